"""Hostile or careless text in configs, data files and results folders: nothing runs in a reader's browser,
terminal or spreadsheet, nothing crashes or hangs the tools."""
