"""Playing in key: key and scale names, the lean, the gate's barred and cut pitches, and takes in key."""

from __future__ import annotations

import mido
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.performing import assert_nothing_hangs, note_ons, perform
from vrae_live.checkpoint import load_checkpoint, save_checkpoint
from vrae_live.cli import main
from vrae_live.config import load_config
from vrae_live.errors import ConfigError
from vrae_live.live.controls import Controls
from vrae_live.live.midi.follow import ChordFollower
from vrae_live.models import model_for
from vrae_live.play.key import CHORD_LEAN, SCALES, key_name, lean_for, lean_probabilities, parse_key, parse_scale, scale_classes
from vrae_live.play.notes import Gate, NoteSettings
from vrae_live.play.state import ControlState
from vrae_live.testing.fake_time import FakeTime

PITCHES = list(range(36, 85))
C_MAJOR = scale_classes(0, "major")


# -- names


@pytest.mark.parametrize("name, key", [("C", 0), ("c#", 1), ("Db", 1), ("F#", 6), ("gb", 6), ("Bb", 10),
                                       ("B", 11), ("Cb", 11), ("E♭", 3), ("7", 7), (11, 11)])
def test_a_key_is_read_from_its_name_or_pitch_class(name, key):
    assert parse_key(name) == key


@pytest.mark.parametrize("name", ["H", "C##", "X", "", "12", -1, 12])
def test_an_unknown_key_is_one_line_naming_the_keys(name):
    with pytest.raises(ConfigError, match=r"C, C#, Db|0\.\.11"):
        parse_key(name)


def test_scales_are_read_with_their_aliases_and_an_unknown_one_lists_them():
    assert parse_scale("Harmonic Minor") == "harmonic-minor"
    assert parse_scale("natural_minor") == "minor"
    for name in ("major", "minor", "harmonic-minor", "dorian", "phrygian", "lydian", "mixolydian", "aeolian",
                 "locrian", "major-pentatonic", "minor-pentatonic", "blues", "chromatic"):
        assert parse_scale(name) == name and 0 in SCALES[name]
    with pytest.raises(ConfigError, match="known: major, minor"):
        parse_scale("bebop")


def test_scale_classes_are_the_scale_on_its_tonic():
    assert scale_classes(0, "major") == {0, 2, 4, 5, 7, 9, 11}
    assert scale_classes(9, "minor") == C_MAJOR  # A minor has C major's notes
    assert scale_classes(2, "dorian") == C_MAJOR
    assert scale_classes(7, "major-pentatonic") == {7, 9, 11, 2, 4}
    assert len(scale_classes(5, "chromatic")) == 12


# -- the lean


def test_nothing_leans_at_strength_0_or_without_a_key_or_chord():
    assert lean_for(PITCHES, 0, 0, "major", 0.0) is None
    assert lean_for(PITCHES, 0, None, "major", 1.0) is None


def test_the_lean_keeps_the_scale_and_leans_the_rest_by_the_strength():
    lean = lean_for(PITCHES, 0, 0, "major", 0.75)
    classes = np.array(PITCHES) % 12
    inside = np.isin(classes, sorted(C_MAJOR))
    assert (lean.weights[inside] == 1.0).all() and np.allclose(lean.weights[~inside], 0.25)
    assert not lean.barred.any() and (lean.outside == ~inside).all()
    full = lean_for(PITCHES, 0, 0, "major", 1.0)
    assert (full.barred == ~inside).all()


def test_the_lean_is_on_the_notes_sent_after_the_transpose():
    up = lean_for(PITCHES, 2, 2, "major", 1.0)  # D major on the notes two semitones up: C major on the pitches
    assert (up.barred == lean_for(PITCHES, 0, 0, "major", 1.0).barred).all()


def test_a_chord_is_leaned_on_hardest_then_the_scale():
    chord = frozenset({4, 8, 11})  # E major: G# is outside C major
    lean = lean_for(PITCHES, 0, 0, "major", 1.0, chord)
    weight = dict(zip(np.array(PITCHES) % 12, lean.weights))
    assert weight[4] == weight[8] == weight[11] == 1.0  # the chord, G# included
    assert weight[0] == weight[2] == 1.0 - CHORD_LEAN  # the scale beside the chord
    assert weight[1] == weight[3] == 0.0  # neither
    assert (lean.barred == ~np.isin(np.array(PITCHES) % 12, sorted(C_MAJOR | chord))).all()


def test_leaning_multiplies_the_odds():
    p = np.array([0.2, 0.5, 0.9])
    leaned = lean_probabilities(p, np.array([1.0, 0.5, 0.0]))
    np.testing.assert_allclose(leaned, [0.2, 1 / 3, 0.0])


# -- the gate


@pytest.mark.parametrize("onsets", [False, True], ids=["binary roll", "onsets"])
def test_a_barred_pitch_never_starts_but_one_sounding_goes_on(onsets):
    gate = Gate(1, 3, NoteSettings(polyphony=None))
    sure = np.ones((1, 6 if onsets else 3))
    first = gate.step(None, sure, 1.0, np.full((1, 3), 0.99), barred=np.array([[False, True, False]]))
    assert first[0, :3].tolist() == [True, False, True]
    # pitch 0 now barred while it sounds: it is held (not struck again), pitch 1 may start now
    later = gate.step(None, sure, 1.0, np.full((1, 3), 0.5), barred=np.array([[True, False, False]]))
    assert later[0, :3].tolist() == [True, True, True]
    if onsets:
        assert later[0, 3:].tolist() == [False, True, True]  # 0 held, 1 starts, 2 struck again


@pytest.mark.parametrize("onsets", [False, True], ids=["binary roll", "onsets"])
def test_a_cut_pitch_stops_at_once_whatever_its_chance(onsets):
    gate = Gate(1, 2, NoteSettings(min_len=4))
    sure = np.ones((1, 4 if onsets else 2))
    gate.step(None, sure)
    frame = gate.step(None, sure, cut=np.array([[True, False]]))
    assert frame[0, :2].tolist() == [False, True]  # min_len would have held it


# -- takes in key


@pytest.fixture(scope="module", params=["onsets and meter", "binary roll"])
def key_checkpoint(request, tmp_path_factory):
    """A live-2d model with random weights (these, seeded): it sounds every pitch readily, in no key. A model
    of onsets strikes each pitch with a chance of about 1/3 a step, so that a note is not struck again every
    other step and some last across a change of key. One component: the lean works on whichever frame a
    mixture draws (test_mixture.py plays one), and one frame's chances are what these tests set."""
    overrides = {"hidden": 32, "latent": 2, "components": 1}
    if request.param == "binary roll":
        overrides.update(onsets=False, meter=False)
    config = load_config("live-2d", overrides)
    torch.manual_seed(0)
    model = model_for(config, len(PITCHES)).eval()
    if config.data.onsets:
        with torch.no_grad():
            model.to_logits.bias[len(PITCHES):] -= 0.7
    return load_checkpoint(save_checkpoint(tmp_path_factory.mktemp("key") / "model", model, config, PITCHES))


def share_in(notes, classes) -> float:
    return float(np.mean([n % 12 in classes for n in notes]))


def test_strength_1_plays_only_the_scale_and_less_leans_less(key_checkpoint):
    shares = {}
    for strength in (0.0, 0.5, 1.0):
        sink, *_ = perform(key_checkpoint, 300, initial=ControlState(key=2, scale="minor", key_strength=strength))
        notes = [m.note for m in note_ons(sink)]
        assert len(notes) > 100
        shares[strength] = share_in(notes, scale_classes(2, "minor"))
        assert_nothing_hangs(sink.messages)
    assert shares[1.0] == 1.0
    assert shares[0.0] < shares[0.5] < 1.0


def test_the_key_holds_after_a_transpose_and_on_every_voice(key_checkpoint):
    def touch(controls, index, performer):
        if index == 5:
            controls.handle_message("/vrae/voice/2/on", [1])
            controls.handle_message("/vrae/voice/3/on", [1])
            controls.handle_message("/vrae/voice/3/key", ["Eb"])  # voice 3 in its own key

    sink, *_ = perform(key_checkpoint, 200, [("/vrae/transpose", [5])], initial=ControlState(
        key=0, scale="major-pentatonic", key_strength=1.0), at_frame=touch, voices=3)
    by_channel = {c: [m.note for m in note_ons(sink) if m.channel == c] for c in range(3)}
    assert all(len(notes) > 20 for notes in by_channel.values())
    assert share_in(by_channel[0] + by_channel[1], scale_classes(0, "major-pentatonic")) == 1.0
    assert share_in(by_channel[2], scale_classes(3, "major-pentatonic")) == 1.0
    assert_nothing_hangs(sink.messages)


def notes_sounding_at_change(sink, change_at_s: float) -> list[tuple[int, float]]:
    """(note, when it ended) for each note sounding when the key changed at ``change_at_s``."""
    started, ended = {}, []
    for t, m in sink.timed:
        if m.type == "note_on" and m.velocity > 0:
            started[(m.channel, m.note)] = t
        elif m.type in ("note_on", "note_off") and (m.channel, m.note) in started:
            begin = started.pop((m.channel, m.note))
            if begin < change_at_s:
                ended.append((m.note, t))
    return ended


def timed_ons(sink) -> list[tuple[int, float]]:
    return [(m.note, t) for t, m in sink.timed if m.type == "note_on" and m.velocity > 0]


@pytest.mark.parametrize("key_cut", [False, True], ids=["notes end as they would", "--key-cut"])
def test_a_new_key_ends_the_notes_outside_it_only_with_key_cut(key_checkpoint, key_cut):
    change, changed_at = 100, []

    def to_f_sharp(controls, index, performer):
        if index == change:
            controls.handle_message("/vrae/key", ["F#"])
            changed_at.append(fake.now())

    fake = FakeTime()
    initial = ControlState(key=0, scale="major", key_strength=1.0)
    # no polyphony limit: this random model strikes most pitches readily, and new notes would take
    # the voices of held ones before the change
    sink, *_ = perform(key_checkpoint, 200, initial=initial, at_frame=to_f_sharp, key_cut=key_cut, fake=fake,
                       notes=NoteSettings(polyphony=None))
    period = key_checkpoint.timing.frame_seconds()
    outside = [(n, t) for n, t in notes_sounding_at_change(sink, changed_at[0])
               if n % 12 not in scale_classes(6, "major") and t > changed_at[0]]
    assert outside, "some C major notes outside F# major sound across the change"
    ends = [t - changed_at[0] for _, t in outside]
    if key_cut:
        assert max(ends) <= 2 * period + 1e-9  # the frame decoded next ends them
    else:
        assert max(ends) > 2 * period  # they end as they would
    after = [n for n, t in timed_ons(sink) if t > changed_at[0] + 2 * period]
    assert after and share_in(after, scale_classes(6, "major")) == 1.0
    assert_nothing_hangs(sink.messages)


# -- OSC and the follow input


def test_key_scale_and_strength_over_osc_and_bad_names_are_counted():
    controls = Controls(voices=2)
    controls.handle_message("/vrae/key", ["F#"])
    controls.handle_message("/vrae/scale", ["Dorian"])
    controls.handle_message("/vrae/key-strength", [1.5])
    controls.handle_message("/vrae/voice/2/key", [9])
    controls.handle_message("/vrae/voice/2/scale", ["harmonic minor"])
    state = controls.snapshot()
    assert (state.key, state.scale, state.key_strength) == (6, "dorian", 1.0)
    assert (state.voice(2).key, state.voice(2).scale) == (9, "harmonic-minor")
    controls.handle_message("/vrae/key", ["H"])
    controls.handle_message("/vrae/key", [12])
    controls.handle_message("/vrae/scale", ["bebop"])
    controls.handle_message("/vrae/scale", [3])
    controls.handle_message("/vrae/key", [])
    stats = controls.stats
    assert stats["unknown_name"] == 3 and stats["wrong_type"] == 1 and stats["wrong_args"] == 1
    assert controls.snapshot().key == 6
    controls.handle_message("/vrae/key", ["none"])
    assert controls.snapshot().key is None


def test_the_follow_input_holds_the_chord_of_the_notes_held():
    controls = Controls()
    follow = ChordFollower(controls)
    for note in (52, 56, 59):  # E major, note-ons
        follow.receive(bytes([0x90, note, 90]))
    assert controls.snapshot().chord == {4, 8, 11}
    follow.receive(bytes([0x80, 56, 0]))
    follow.receive(bytes([0x91, 64, 0]))  # velocity 0 on another channel: releases nothing held
    assert controls.snapshot().chord == {4, 11}
    follow.receive(bytes([0x90, 56, 0]))  # a repeated release changes nothing
    follow.receive(bytes([0xB0, 123, 0]))  # All Notes Off
    assert controls.snapshot().chord == frozenset()
    follow.receive(bytes([0xF8]))  # not a note: ignored
    assert follow.changes == 5  # three notes down, one up, all off


def test_a_chord_change_reaches_the_next_frame_decoded(key_checkpoint):
    chords = {60: frozenset({1, 6, 10}), 160: frozenset()}  # F# major over C major, then released
    marks = []

    def hold(controls, index, performer):
        if index in chords:
            controls.set_chord(chords[index])
            marks.append(fake.now())

    fake = FakeTime()
    sink, *_ = perform(key_checkpoint, 260, initial=ControlState(key=0, scale="major", key_strength=1.0),
                       at_frame=hold, fake=fake)
    period = key_checkpoint.timing.frame_seconds()
    ons = timed_ons(sink)
    held = [n for n, t in ons if marks[0] + period <= t < marks[1]]
    assert held and share_in(held, C_MAJOR | chords[60]) == 1.0
    assert any(n % 12 in {1, 6, 10} for n in held)  # the chord's own notes outside the key are played
    first = min(t for n, t in ons if t >= marks[0] and n % 12 in {1, 6, 10})
    assert first - marks[0] <= 2 * period + 1e-9
    after = [n for n, t in ons if t >= marks[1] + period]
    assert after and share_in(after, C_MAJOR) == 1.0
    assert_nothing_hangs(sink.messages)


def test_generate_plays_in_the_key_it_is_given(key_checkpoint, tmp_path):
    takes = {}
    for strength in ("0", "1"):
        out = tmp_path / f"take-{strength}.mid"
        result = CliRunner().invoke(main, ["generate", str(key_checkpoint.path), "--out", str(out), "--steps", "128",
                                           "--key", "Eb", "--scale", "blues", "--key-strength", strength],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        takes[strength] = [m.note for m in mido.MidiFile(out) if m.type == "note_on" and m.velocity > 0]
    blues = scale_classes(3, "blues")
    assert len(takes["1"]) > 20 and share_in(takes["1"], blues) == 1.0
    assert share_in(takes["0"], blues) < 0.8


@pytest.mark.parametrize("key, scale, name", [
    (3, "major", "Eb major"), (3, "minor", "D# minor"), (0, "minor", "C minor"), (10, "minor", "Bb minor"),
    (6, "major", "F# major"), (1, "major", "Db major"), (8, "minor", "G# minor"), (2, "dorian", "D dorian"),
    (3, "dorian", "Eb dorian"), (8, "mixolydian", "Ab mixolydian"), (11, "locrian", "B locrian"),
    (5, "lydian", "F lydian"), (10, "chromatic", "Bb chromatic"),
])
def test_a_key_is_spelt_as_its_signature_spells_it(key, scale, name):
    assert key_name(key, scale) == name
    assert parse_key(name.split()[0]) == key
