"""Inputs: datalists, DICOM series reading and checks, input screening and output folders."""
