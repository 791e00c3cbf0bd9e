"""vrae-live: play a Variational Recurrent Auto-Encoder trained on your MIDI songs live."""

__version__ = "0.1.0"
