"""The project's exceptions. The CLI turns each into a one-line message and exit status 1."""


class VraeLiveError(Exception):
    """Base class: an error the user can act on, with a message that says how."""


class ConfigError(VraeLiveError):
    """A preset or a command-line setting is unknown or out of range."""


class DataError(VraeLiveError):
    """The songs cannot give a training set: none usable, or too few windows."""


class CheckpointError(VraeLiveError):
    """A checkpoint directory is missing, damaged, or of an unknown format."""


class MidiPortError(VraeLiveError):
    """A MIDI port cannot be opened or was lost."""


class TrainingError(VraeLiveError):
    """Training diverged: the loss, its gradient or the weights are no longer finite numbers."""
