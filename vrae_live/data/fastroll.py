"""MIDI files to piano rolls at corpus speed: symusic's C++ parser, checked against pretty_midi.

:func:`~vrae_live.data.pianoroll.load_roll` (pretty_midi) is the reference: it takes about
60 ms a song, almost all of it mido reading events in Python. symusic reads the same file in
well under a millisecond. :func:`load_roll_fast` gives the same roll as ``load_roll``, frame
by frame, for either frame timing: it takes symusic's notes in ticks and turns ticks into
seconds exactly as pretty_midi does (the same tempo map, the same float operations), then
shares ``roll_of_notes`` with the reference.

Where the two parsers read a file differently it either matches pretty_midi or hands the
file to pretty_midi (``FALLBACKS`` names each case):

- zero-length notes (note on and off at one tick): pretty_midi drops them, so does this path;
- overlapping notes on one key of one track (a second note-on before the note-off): pretty_midi's
  note-off closes every open note, symusic's only the first, so such a file goes to pretty_midi;
- tempo events off the first track: pretty_midi reads the tempo map from track 0 only, symusic
  from all tracks, so such a file goes to pretty_midi;
- a file symusic cannot read, or whose chunks are damaged (symusic reads on past a missing or
  short track, mido refuses the file): pretty_midi decides whether it is unusable (and says why);
- ticks past ``pretty_midi.MAX_TICK`` (10 million) or SMPTE time division: pretty_midi.

One difference is not seen from symusic's notes: a note struck again while it sounds and then
released once (on, on, off). symusic keeps one note and drops the second, unclosed, note-on;
pretty_midi closes both at the off. Both cover the same frames, except when the second onset
rounds to the release's frame: then pretty_midi's roll has one frame more; and pretty_midi's
onsets have the second strike, symusic's do not. Drums are left out
by both (channel 10).

Damage inside a track's events is not looked for (that would mean walking every event in
Python, mido's cost): mido refuses a data byte over 127, a meta event of the wrong length or an
unknown key signature, and a delta time that puts an event past 10 million ticks; symusic reads
such a file. So a file damaged that way trains on what symusic makes of it instead of being
skipped. A file of random bytes, a truncated file or a missing track is skipped as before.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import FrameTiming
from .pianoroll import UnusableSongError, load_roll, roll_of_notes

PRETTY_MIDI_MAX_TICK = 10_000_000  # pretty_midi.pretty_midi.MAX_TICK: a first refusal that read_midi retries

# Why a file went to pretty_midi, by key (returned by load_roll_fast).
FALLBACKS = {
    "unreadable": "symusic cannot read it",
    "damaged": "a track chunk missing or cut short",
    "overlap": "overlapping notes on one key of one track",
    "tempo_off_track_0": "tempo events off the first track",
    "ticks": "ticks past 10 million, or SMPTE time",
}


def load_roll_fast(path: str | Path, timing: FrameTiming, content: bytes | None = None,
                   with_onsets: bool = False) -> tuple[np.ndarray, str | None]:
    """``load_roll(path, timing, with_onsets)``, read with symusic where that gives the same roll.

    Parameters
    ----------
    path : str or Path
        The MIDI file (named in errors; read unless ``content`` is given).
    timing : FrameTiming
    content : bytes, optional
        The file's bytes, when the caller has read them already.
    with_onsets : bool
        Also the onsets, as columns 128..255.

    Returns
    -------
    roll : np.ndarray, shape (T, 128), or (T, 256) with onsets, dtype bool
    fallback : str or None
        None when symusic read the file, else the key in ``FALLBACKS`` of why pretty_midi did.

    Raises
    ------
    UnusableSongError
        As ``load_roll``: the file cannot be parsed, has no notes, or has only drum notes.
    """
    import symusic

    if content is None:
        try:
            content = Path(path).read_bytes()
        except OSError as err:
            raise UnusableSongError(path, f"cannot read it ({err.strerror or err})") from err
    try:
        score = symusic.Score.from_midi(content)
    except Exception:  # noqa: BLE001 -- symusic raises RuntimeError for most damage; pretty_midi gives the reason
        return load_roll(path, timing, with_onsets), "unreadable"
    fallback = _needs_pretty_midi(content, score)
    if fallback is not None:
        return load_roll(path, timing, with_onsets), fallback

    pitched, drums = [], 0
    for track in score.tracks:
        notes = track.notes.numpy()  # ticks: time, duration (int32), pitch (int8)
        keep = notes["duration"] > 0  # pretty_midi drops a note whose on and off share a tick
        if track.is_drum:
            drums += int(keep.sum())
        elif keep.any():
            pitched.append((notes["time"][keep].astype(np.int64), notes["duration"][keep].astype(np.int64),
                            notes["pitch"][keep].astype(np.int64)))
    if not pitched:
        raise UnusableSongError(path, "only drum notes, no pitched instrument" if drums else "no notes")
    start_tick = np.concatenate([p[0] for p in pitched])
    end_tick = start_tick + np.concatenate([p[1] for p in pitched])
    pitch = np.concatenate([p[2] for p in pitched])

    seconds_of = _TickClock(score)
    tempo_changes = seconds_of.tempo_changes() if timing.steps_per_beat is not None else None
    return roll_of_notes(pitch, seconds_of(start_tick), seconds_of(end_tick), timing, tempo_changes, with_onsets), None


def _needs_pretty_midi(content: bytes, score) -> str | None:
    """The key of ``FALLBACKS`` that sends this file to pretty_midi, or None."""
    if len(content) >= 14 and content[12] & 0x80:  # the division word: SMPTE frames, not ticks per beat
        return "ticks"
    tempos = score.tempos.numpy()["time"]
    if score.end() >= PRETTY_MIDI_MAX_TICK or (len(tempos) and tempos.max() >= PRETTY_MIDI_MAX_TICK) \
            or score.start() < 0:  # int32 ticks that wrapped
        return "ticks"
    chunk_problem = _chunk_problem(content)
    if chunk_problem is not None:
        return chunk_problem
    # symusic splits a track by channel and program; one MIDI track's pieces share its name.
    by_name: dict[str, list[np.ndarray]] = {}
    for track in score.tracks:
        if not track.is_drum and len(track.notes):
            by_name.setdefault(track.name, []).append(track.notes.numpy())
    for parts in by_name.values():
        if _overlaps(parts):
            return "overlap"
    return None


def _overlaps(parts: list[dict[str, np.ndarray]]) -> bool:
    """Whether a note starts on a key before an earlier note on that key has ended."""
    time = np.concatenate([p["time"] for p in parts]).astype(np.int64)
    end = time + np.concatenate([p["duration"] for p in parts])
    pitch = np.concatenate([p["pitch"] for p in parts]).astype(np.int64)
    order = np.lexsort((time, pitch))  # by pitch, then onset
    time, end, pitch = time[order], end[order], pitch[order]
    # Any overlap shows between neighbours in this order: a note that starts inside an earlier one
    # starts inside its predecessor too, or that one overlaps the earlier note itself.
    return bool(np.any((pitch[1:] == pitch[:-1]) & (time[1:] < end[:-1])))


def _chunk_problem(content: bytes) -> str | None:
    """What in the file's chunks sends it to pretty_midi ("damaged", "tempo_off_track_0"), or None.

    mido reads the header's count of tracks, each an MTrk chunk that ends inside the file;
    symusic reads on past a missing or short one, so such a file goes to pretty_midi (which refuses
    it). A track after the first that holds the bytes of a tempo event (FF 51 03) goes too: the
    bytes may also turn up inside other data, and then a file goes to pretty_midi needlessly,
    never the other way round.
    """
    if content[:4] != b"MThd" or len(content) < 14:
        return "damaged"
    tracks = int.from_bytes(content[10:12], "big")
    position = 8 + int.from_bytes(content[4:8], "big")
    tempo_off_track_0 = False
    for track in range(tracks):
        length = int.from_bytes(content[position + 4:position + 8], "big")
        if content[position:position + 4] != b"MTrk" or position + 8 + length > len(content):
            return "damaged"
        if track > 0 and content.find(b"\xff\x51\x03", position + 8, position + 8 + length) >= 0:
            tempo_off_track_0 = True
        position += 8 + length
    return "tempo_off_track_0" if tempo_off_track_0 else None


class _TickClock:
    """Ticks to seconds as pretty_midi computes them (``PrettyMIDI._update_tick_to_time``).

    pretty_midi takes the tempo events of track 0 in file order: one at tick 0 replaces the
    default 120 bpm, a later one that repeats the tempo is ignored. Inside segment ``k`` a tick's
    time is ``end of segment k-1 + tick_scale_k * (tick - start_k)``, in float64, in this order.
    """

    def __init__(self, score) -> None:
        resolution = score.ticks_per_quarter
        self.resolution = resolution
        tempos = score.tempos.numpy()
        scales = [(0, 60.0 / (120.0 * resolution))]
        for tick, mspq in zip(tempos["time"].tolist(), tempos["mspq"].tolist()):
            if tick == 0:
                scales = [(0, 60.0 / ((6e7 / mspq) * resolution))]
            else:
                tick_scale = 60.0 / ((6e7 / mspq) * resolution)
                if tick_scale != scales[-1][1]:
                    scales.append((tick, tick_scale))
        self.start = np.array([tick for tick, _ in scales], dtype=np.int64)  # (K,)
        self.scale = np.array([scale for _, scale in scales])  # (K,) seconds per tick
        ends = [0.0]
        for k in range(1, len(scales)):
            # the float pretty_midi stores at the segment's last tick, carried into the next
            ends.append(ends[-1] + self.scale[k - 1] * np.float64(self.start[k] - self.start[k - 1]))
        self.offset = np.array(ends)  # (K,) seconds at each segment's start

    def __call__(self, ticks: np.ndarray) -> np.ndarray:
        segment = np.searchsorted(self.start, ticks, side="right") - 1
        return self.offset[segment] + self.scale[segment] * (ticks - self.start[segment])

    def tempo_changes(self) -> tuple[np.ndarray, np.ndarray]:
        """``PrettyMIDI.get_tempo_changes()``: (K,) seconds and (K,) quarter notes per minute."""
        return self.offset.copy(), 60.0 / (self.scale * self.resolution)
