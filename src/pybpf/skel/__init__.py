"""Skeletons and subskeletons: the live runtime, and C/Python code generators (``codegen``)."""
