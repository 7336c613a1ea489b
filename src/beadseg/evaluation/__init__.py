"""Scoring predictions against truth (:mod:`.evaluate`, :mod:`.scores`, :mod:`.truth`), the
dilution fit and stock concentration (:mod:`.dilution`, :mod:`.samples`,
:mod:`.dilution_report`), the classical baseline and the table of runs (:mod:`.compare`).
"""
