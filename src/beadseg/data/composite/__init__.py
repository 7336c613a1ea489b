"""Exact-truth composites: real bead appearances pasted at known centres on real backgrounds
(:mod:`.sources`: sprites and backgrounds cut from labelled tiles; :mod:`.layout`: where the
beads go; :mod:`.compose`: the images, masks, labels and centres written).
"""
