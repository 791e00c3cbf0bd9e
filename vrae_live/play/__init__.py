"""The play core: stream, gate, notes, voices, performer, clock, sinks and the MIDI file writer.

Pure: no socket, no port, no thread of its own; ``live/`` plays it in real time, ``offline/`` on
fake time, and ``measure/`` reads its streams.
"""
