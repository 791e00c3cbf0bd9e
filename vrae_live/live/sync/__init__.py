"""Tempo and transport shared with other music software: MIDI clock in and out, Ableton Link."""
