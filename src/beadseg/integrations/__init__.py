"""beadseg in other tools: napari (:mod:`.napari`), ONNX / bioimage.io export
(:mod:`.export`), cluster job scripts (:mod:`.hpc`).
"""
