"""Files: presets read and written, the bundled presets, session files, atomic writes and export."""
