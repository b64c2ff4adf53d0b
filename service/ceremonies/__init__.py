"""Honour ceremonies (荣誉仪式) and the honour wall (喜报)."""
