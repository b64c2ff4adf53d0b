"""Spin-the-wheel (幸运大转盘): weighted prizes with limited stock, provably fair draws."""
