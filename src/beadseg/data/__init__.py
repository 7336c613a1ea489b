"""Training data: grouped/stratified splits, random crops and augmentation."""
