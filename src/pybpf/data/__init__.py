"""Data shipped inside the wheel: the demo's objects and the skeletons generated from them."""
