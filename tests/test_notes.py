import numpy as np
import pytest
from hypothesis import given, settings as hyp_settings, strategies as st

from vrae_live.errors import ConfigError
from vrae_live.play.notes import Gate, NoteEmitter, NoteEvent, NoteSettings, temper


def run_gate(gate, frames, **kwargs):
    return np.array([gate.step_frame(np.asarray(f, float), **kwargs) for f in frames])  # (T, P)


def runs(column):
    """(start, length, ends_at_stream_end) for each run of True in a 1-d bool array."""
    result, start = [], None
    for t, on in enumerate(column):
        if on and start is None:
            start = t
        elif not on and start is not None:
            result.append((start, t - start, False))
            start = None
    if start is not None:
        result.append((start, len(column) - start, True))
    return result


# --- settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(on_threshold=0.5, off_threshold=0.5),
        dict(off_threshold=-0.1),
        dict(min_len=0),
        dict(min_len=4, max_len=3),
        dict(polyphony=0),
        dict(velocity_range=(0, 100)),
        dict(velocity_range=(100, 50)),
    ],
)
def test_bad_settings_are_rejected(kwargs):
    with pytest.raises(ConfigError):
        NoteSettings(**kwargs)


# --- Gate, one voice ----------------------------------------------------------------------------


def test_hysteresis_no_flicker_between_thresholds():
    gate = Gate(1, 1, NoteSettings(on_threshold=0.5, off_threshold=0.3, polyphony=None))
    wavering = [0.45, 0.35, 0.49, 0.31] * 5
    assert not run_gate(gate, [[p] for p in wavering]).any(), "never reached on: stays off"
    stream = [0.6] + wavering + [0.2, 0.45, 0.49]
    out = run_gate(gate, [[p] for p in stream])[:, 0]
    assert out[: 1 + len(wavering)].all(), "once on, stays on while above off"
    assert not out[1 + len(wavering) :].any(), "off below off_threshold; no restart under on_threshold"


def test_min_len_holds_a_note_after_its_probability_drops():
    gate = Gate(1, 1, NoteSettings(min_len=3, polyphony=None))
    out = run_gate(gate, [[0.9], [0.0], [0.0], [0.0], [0.0]])[:, 0]
    assert out.tolist() == [True, True, True, False, False]


def test_max_len_releases_and_locks_until_the_probability_falls():
    gate = Gate(1, 1, NoteSettings(max_len=3, polyphony=None))
    stream = [0.9] * 6 + [0.1] + [0.9] * 2
    out = run_gate(gate, [[p] for p in stream])[:, 0]
    # 3 frames on, locked while 0.9 persists, unlocked by 0.1, starts again on 0.9
    assert out.tolist() == [True, True, True, False, False, False, False, True, True]


def test_polyphony_keeps_the_most_probable():
    gate = Gate(1, 4, NoteSettings(polyphony=2))
    out = gate.step_frame(np.array([0.6, 0.9, 0.7, 0.8]))
    assert out.tolist() == [False, True, False, True]


def test_polyphony_gives_a_new_note_the_voice_of_a_held_one_but_not_of_a_young_note():
    gate = Gate(1, 2, NoteSettings(polyphony=1, min_len=2))
    assert gate.step_frame(np.array([0.6, 0.0])).tolist() == [True, False]
    # note 0 is one frame old: protected by min_len even against a new note
    assert gate.step_frame(np.array([0.6, 0.9])).tolist() == [True, False]
    # then a new note takes its voice, however likely note 0 is to hold
    assert gate.step_frame(np.array([0.9, 0.6])).tolist() == [False, True]
    # among new notes the most probable wins, the lower pitch on a tie
    gate = Gate(1, 3, NoteSettings(polyphony=1))
    gate.step_frame(np.array([0.9, 0.0, 0.0]))
    assert gate.step_frame(np.array([0.9, 0.6, 0.7])).tolist() == [False, False, True]
    assert Gate(1, 3, NoteSettings(polyphony=1)).step_frame(np.array([0.6, 0.6, 0.0])).tolist() == [True, False, False]


def test_a_model_of_onsets_at_one_voice_plays_a_line():
    """Each note ends where the next begins, the held one giving its voice to the one struck, and a note
    struck again keeps its voice as a new note."""
    gate = Gate(1, 3, NoteSettings(polyphony=1))
    frame = lambda sound, onset: np.array(sound + onset, dtype=float)  # noqa: E731
    assert gate.step_frame(frame([0.9, 0.0, 0.0], [0.9, 0.0, 0.0])).tolist() == [1, 0, 0, 1, 0, 0]
    assert gate.step_frame(frame([0.9, 0.6, 0.0], [0.0, 0.6, 0.0])).tolist() == [0, 1, 0, 0, 1, 0]
    assert gate.step_frame(frame([0.0, 0.9, 0.8], [0.0, 0.7, 0.0])).tolist() == [0, 1, 0, 0, 1, 0]


def test_temper():
    p = np.array([0.1, 0.5, 0.9])
    assert np.allclose(temper(p, 1.0), p)
    sharp, flat = temper(p, 0.5), temper(p, 4.0)
    assert sharp[0] < 0.1 and sharp[2] > 0.9 and flat[0] > 0.1 and flat[2] < 0.9
    assert np.allclose(temper(p, 1.0)[1], 0.5)
    assert np.isfinite(temper(np.array([0.0, 1.0]), 0.1)).all()


def test_sampling_is_deterministic_given_the_rng():
    probs = np.random.default_rng(1).random((200, 12)) * 0.6
    a = run_gate(Gate(1, 12), probs, temperature=0.8, rng=np.random.default_rng(7))
    b = run_gate(Gate(1, 12), probs, temperature=0.8, rng=np.random.default_rng(7))
    c = run_gate(Gate(1, 12, seed=7), probs, temperature=0.8)
    assert (a == b).all() and (a == c).all()
    assert a.any(), "sampling starts notes below the on threshold"


def test_sampling_starts_notes_at_about_their_probability():
    settings = NoteSettings(off_threshold=0.99, on_threshold=1.0, polyphony=None)  # every note lasts one frame
    gate = Gate(1, 1, settings, seed=0)
    onsets = 0
    for _ in range(4000):
        onsets += int(gate.step_frame(np.array([0.2]), temperature=1.0)[0])
        gate.reset()
    assert 0.17 < onsets / 4000 < 0.23


@hyp_settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), min_len=st.integers(1, 3), max_len=st.sampled_from([None, 3, 5]),
       polyphony=st.sampled_from([None, 1, 2, 4]), temperature=st.sampled_from([0.0, 0.7, 1.0]),
       levels=st.sampled_from([0, 4, 10]))
def test_a_gate_steps_each_row_as_a_gate_of_one_voice_would(seed, min_len, max_len, polyphony, temperature, levels):
    """Rows stepped together, some rows sitting some steps out: each row's frames are those of a
    one-voice Gate of the same settings fed that row's frames and draws alone (few probability
    levels make ties, where polyphony's order matters)."""
    settings = NoteSettings(on_threshold=0.5, off_threshold=0.3, min_len=min_len,
                            max_len=None if max_len is None else max(max_len, min_len), polyphony=polyphony)
    rng = np.random.default_rng(seed)
    count, pitches = 5, 9
    bank, gates = Gate(count, pitches, settings), [Gate(1, pitches, settings) for _ in range(count)]
    for t in range(40):
        rows = None if t % 3 == 0 else np.flatnonzero(rng.random(count) < 0.7)
        chosen = np.arange(count) if rows is None else rows
        probs = rng.random((len(chosen), pitches))
        if levels:
            probs = np.round(probs * levels) / levels
        draws = rng.random(probs.shape) if temperature > 0 else None
        if t == 20:
            bank.reset(2)
            gates[2].reset()
        together = bank.step(rows, probs, temperature, draws)
        for r, k in enumerate(chosen):
            alone = gates[k].step_frame(probs[r], temperature, _Replay(draws[r]) if temperature > 0 else None)
            assert (together[r] == alone).all(), (t, k)


class _Replay:
    """An rng that hands out a given draw."""

    def __init__(self, draws):
        self.draws = draws

    def random(self, n):
        assert n == len(self.draws)
        return self.draws


def test_reset_and_shape_checks():
    gate = Gate(1, 2, NoteSettings(min_len=3))
    assert gate.step_frame(np.array([0.9, 0.9])).tolist() == [True, True]
    with pytest.raises(ValueError):
        gate.step_frame(np.array([0.9, 0.9, 0.9]))
    with pytest.raises(ValueError):
        gate.step_frame(np.array([[0.9, 0.9]]))
    gate.reset()
    assert gate.step_frame(np.array([0.0, 0.0])).tolist() == [False] * 2, "min_len no longer holds them"
    with pytest.raises(ValueError):
        gate.step_frame(np.array([0.5, 0.5]), temperature=-1)
    with pytest.raises(ValueError):
        gate.step(None, np.array([[0.5, 0.5]]), temperature=1.0)  # no draws


# --- NoteEmitter --------------------------------------------------------------------------


def test_emitter_offs_before_ons_and_velocity_from_probability():
    emitter = NoteEmitter(NoteSettings(velocity_range=(20, 120)))
    pitches = [60, 62, 64]
    assert emitter.step(np.array([1, 0, 0], bool), np.array([0.5, 0, 0]), pitches) == [NoteEvent("on", 60, 70, 0)]
    events = emitter.step(np.array([0, 1, 1], bool), np.array([0, 1.0, 0.0]), pitches)
    assert events == [NoteEvent("off", 60, 0, 0), NoteEvent("on", 62, 120, 0), NoteEvent("on", 64, 20, 0)]
    assert emitter.sounding == {(0, 62), (0, 64)}
    assert emitter.all_off() == [NoteEvent("off", 62, 0, 0), NoteEvent("off", 64, 0, 0)]
    assert emitter.sounding == frozenset()


def test_transpose_and_channel_change_while_sounding_switch_off_the_right_note():
    emitter = NoteEmitter()
    pitches, probs = [60], np.array([0.9])
    assert emitter.step(np.array([True]), probs, pitches, velocity=90, transpose=2, channel=3) == [
        NoteEvent("on", 62, 90, 3)
    ]
    assert emitter.step(np.array([True]), probs, pitches, transpose=-5, channel=0) == [], "no retrigger"
    assert emitter.step(np.array([False]), probs, pitches, transpose=-5, channel=0) == [NoteEvent("off", 62, 0, 3)]


def test_out_of_range_notes_are_skipped_not_wrapped_and_never_start_midway():
    emitter = NoteEmitter()
    pitches, probs = [120, 121], np.array([0.9, 0.9])
    assert emitter.step(np.array([True, True]), probs, pitches, velocity=64, transpose=10) == []
    # the transpose comes back into range while the gate still holds the pitches: still silent
    assert emitter.step(np.array([True, True]), probs, pitches, velocity=64) == []
    assert emitter.step(np.array([False, True]), probs, pitches, velocity=64) == []
    assert emitter.step(np.array([True, False]), probs, pitches, velocity=64) == [NoteEvent("on", 120, 64, 0)]
    assert emitter.step(np.array([True, True]), probs, pitches, velocity=64, transpose=-122) == []
    assert emitter.sounding == {(0, 120)}


def test_a_note_already_sounding_for_another_pitch_is_not_started_twice():
    emitter = NoteEmitter()
    pitches, probs = [59, 60], np.array([0.9, 0.9])
    assert emitter.step(np.array([False, True]), probs, pitches, velocity=64) == [NoteEvent("on", 60, 64, 0)]
    # transposed by +1, pitch 59 would be note 60 too, which sounds already
    assert emitter.step(np.array([True, True]), probs, pitches, velocity=64, transpose=1) == []
    assert emitter.step(np.array([True, False]), probs, pitches, velocity=64, transpose=1) == [
        NoteEvent("off", 60, 0, 0)
    ]


def test_emitter_rejects_bad_arguments():
    emitter = NoteEmitter()
    with pytest.raises(ValueError):
        emitter.step(np.array([True]), np.array([0.5]), [60], velocity=0)
    with pytest.raises(ValueError):
        emitter.step(np.array([True]), np.array([0.5]), [60], channel=16)
    with pytest.raises(ValueError):
        emitter.step(np.array([True, False]), np.array([0.5, 0.5]), [60])


# --- property: gate + emitter over random streams --------------------------------------------


@st.composite
def performances(draw):
    n_pitches = draw(st.integers(1, 8))
    n_frames = draw(st.integers(1, 60))
    min_len = draw(st.integers(1, 4))
    max_len = draw(st.one_of(st.none(), st.integers(min_len, 8)))
    off = draw(st.floats(0.05, 0.6))
    on = draw(st.floats(off + 0.01, 0.95))
    settings = NoteSettings(
        on_threshold=on,
        off_threshold=off,
        min_len=min_len,
        max_len=max_len,
        polyphony=draw(st.one_of(st.none(), st.integers(1, 5))),
    )
    frame = st.lists(st.floats(0, 1), min_size=n_pitches, max_size=n_pitches)
    probs = np.array(draw(st.lists(frame, min_size=n_frames, max_size=n_frames)))  # (T, P)
    # Contiguous pitches, as a roll has, with small transposes and few channels, so that
    # a transposed note lands on one that still sounds; wide ones leave 0..127.
    lowest = draw(st.integers(0, 128 - n_pitches))
    pitches = draw(
        st.one_of(
            st.just(list(range(lowest, lowest + n_pitches))),
            st.lists(st.integers(0, 127), min_size=n_pitches, max_size=n_pitches, unique=True),
        )
    )
    transposes = st.one_of(st.integers(-2, 2), st.integers(-130, 130))
    channels = st.one_of(st.integers(0, 1), st.integers(0, 15))
    velocities = st.one_of(st.none(), st.integers(1, 127))
    controls = draw(
        st.lists(st.tuples(transposes, channels, velocities), min_size=n_frames, max_size=n_frames)
    )
    temperature = draw(st.sampled_from([0.0, 0.0, 0.5, 1.0, 2.0]))
    seed = draw(st.integers(0, 2**16))
    return settings, probs, pitches, controls, temperature, seed


@pytest.mark.slow
@hyp_settings(max_examples=150, deadline=None)
@given(performances())
def test_every_note_on_is_switched_off_once_and_limits_hold(performance):
    settings, probs, pitches, controls, temperature, seed = performance
    gate, emitter = Gate(1, len(pitches), settings), NoteEmitter(settings)
    rng = np.random.default_rng(seed)
    frames, events = [], []
    for p, (transpose, channel, velocity) in zip(probs, controls):
        frame = gate.step_frame(p, temperature=temperature, rng=rng)
        frames.append(frame)
        if settings.polyphony is not None:
            assert frame.sum() <= settings.polyphony
        events += emitter.step(frame, p, pitches, velocity=velocity, transpose=transpose, channel=channel)
        assert len(emitter.sounding) <= frame.sum()
    events += emitter.all_off()

    sounding: set[tuple[int, int]] = set()
    for event in events:
        key = (event.channel, event.note)
        assert 0 <= event.note <= 127 and 0 <= event.channel <= 15
        if event.kind == "on":
            assert key not in sounding, f"{key} switched on twice"
            assert 1 <= event.velocity <= 127
            sounding.add(key)
        else:
            assert key in sounding, f"{key} switched off while not sounding"
            sounding.remove(key)
    assert not sounding, "every on has its off after all_off()"
    assert emitter.sounding == frozenset()

    frames = np.array(frames)  # (T, P)
    for column in frames.T:
        for start, length, cut_by_end in runs(column):
            if not cut_by_end:
                assert length >= settings.min_len
            if settings.max_len is not None:
                assert length <= settings.max_len
    if temperature == 0.0:
        starts = frames & ~np.vstack([np.zeros((1, frames.shape[1]), bool), frames[:-1]])
        assert (probs[starts] >= settings.on_threshold).all(), "at temperature 0 a note starts only at on_threshold"


# --- onsets ------------------------------------------------------------------------------


def onset_frame(sound, strike):
    return np.concatenate([np.asarray(sound, float), np.asarray(strike, float)])


def test_with_onsets_a_note_starts_on_an_onset_holds_and_is_struck_again_on_one():
    gate = Gate(1, 3, NoteSettings(polyphony=None))
    frames = run_gate(gate, [
        onset_frame([0.9, 0.9, 0.1], [0.9, 0.1, 0.1]),  # 0 starts; 1 would sound but has no onset: silent
        onset_frame([0.9, 0.9, 0.1], [0.1, 0.1, 0.1]),  # 0 holds
        onset_frame([0.9, 0.1, 0.1], [0.8, 0.1, 0.1]),  # 0 struck again: sounds on, a new note
        onset_frame([0.2, 0.1, 0.1], [0.1, 0.1, 0.1]),  # 0 falls below the off threshold
    ])
    assert frames.shape == (4, 6)
    assert frames[:, :3].tolist() == [[True, False, False], [True, False, False], [True, False, False],
                                       [False, False, False]]
    assert frames[:, 3:].tolist() == [[True, False, False], [False, False, False], [True, False, False],
                                       [False, False, False]]


def test_with_onsets_a_held_note_is_struck_again_only_where_the_model_says_so():
    rng = np.random.default_rng(0)
    gate = Gate(1, 4, NoteSettings(polyphony=None))
    sound, strike = np.full(4, 0.99), np.array([0.99, 0.0, 0.0, 0.3])
    frames = run_gate(gate, [onset_frame(sound, strike if t == 0 else strike * [0, 1, 1, 1]) for t in range(400)],
                      temperature=1.0, rng=rng)
    struck = frames[:, 4:]
    assert frames[:, 0].all() and struck[0, 0] and not struck[1:, 0].any()  # held, never struck again by a die
    assert not frames[:, 1:3].any()  # sounding without an onset never starts
    assert 0.2 < struck[1:, 3].mean() < 0.4  # struck as often as the model says (0.3 a frame)
    assert not (struck & ~frames[:, :4]).any()  # only sounding notes are struck


def test_the_emitter_strikes_a_sounding_note_again_with_an_off_and_an_on():
    emitter = NoteEmitter()
    pitches = [60, 64]
    on = emitter.step(np.array([True, True]), np.full(2, 0.5), pitches, velocity=90,
                      struck=np.array([True, True]))
    again = emitter.step(np.array([True, True]), np.full(2, 0.5), pitches, velocity=90,
                         struck=np.array([True, False]))
    held = emitter.step(np.array([True, True]), np.full(2, 0.5), pitches, velocity=90,
                        struck=np.array([False, False]))
    assert [(e.kind, e.note) for e in on] == [("on", 60), ("on", 64)]
    assert [(e.kind, e.note) for e in again] == [("off", 60), ("on", 60)]
    assert held == []
