"""beadseg in napari (``pip install "beadseg[napari]"``; manifest: ``napari.yaml``).

- widget "Segment beads" (:class:`~.widget.SegmentWidget`): the image layer shown, segmented with
  the shipped model, a run folder or a checkpoint; adds its instance labels and bead centres
  (per-bead table as features) and shows the count and beads per MP;
- reader (:func:`~.reader.get_reader`): opens a `beadseg predict` output folder.

:mod:`~.layers` holds the logic and imports neither napari nor Qt.
"""
