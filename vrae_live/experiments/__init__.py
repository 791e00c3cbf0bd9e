"""Studies that train models to test a claim, each one idea, each reproduced by a script under scripts/.

Imports point one way: ``experiments -> training | measure -> models | data -> config``;
nothing here opens a socket or a MIDI port.
"""
