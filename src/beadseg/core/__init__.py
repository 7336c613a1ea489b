"""The domain core: what every layer above uses and nothing below it exists.

Errors and names (:mod:`.errors`, :mod:`.naming`), the settings schema (:mod:`.config`), files
(:mod:`.files`: discovery, pairing, atomic writes, CSV), images (:mod:`.images`: one way from a
file to a canonical array, :mod:`.normalization`: to the values a network sees), masks and
labels (:mod:`.masks`, :mod:`.labels`), the bead itself (:mod:`.beads`: single-bead area,
counting, splitting touching beads), filters, registration of masks, metrics and the
training-data fingerprint (:mod:`.domain`). Nothing here imports torch.
"""
