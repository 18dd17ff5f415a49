"""geovq helpers."""
