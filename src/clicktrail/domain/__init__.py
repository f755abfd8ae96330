"""The pure core of clicktrail. See README.md in this folder: standard library only, no I/O."""
