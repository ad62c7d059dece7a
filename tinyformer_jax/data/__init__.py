"""Data sets and on-device augmentation."""
