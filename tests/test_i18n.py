"""Messages in Russian: the catalog complete and in step with the source, the language chosen
as documented, Russian output with the English numbers, no English sentence left."""

from __future__ import annotations

import gettext
import re
import string
import subprocess
import sys
from pathlib import Path

import pytest

import deltaprop
from deltaprop import i18n
from deltaprop.cli import main

babel = pytest.importorskip("babel")  # in the test extra: the catalogs are managed with Babel
from babel.messages.checkers import checkers  # noqa: E402
from babel.messages.extract import extract_from_dir  # noqa: E402
from babel.messages.mofile import read_mo  # noqa: E402
from babel.messages.pofile import read_po  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(deltaprop.__file__).parent
PO = SRC / "locale" / "ru" / "LC_MESSAGES" / "deltaprop.po"
MO = PO.with_suffix(".mo")


def _po():
    with open(PO, "rb") as f:
        return read_po(f, locale="ru")


def _fields(text: str) -> list[str]:
    """The replacement fields of a str.format template, or the %-conversions of an argparse one."""
    if "%(" in text or "%s" in text or "%r" in text:
        return sorted(re.findall(r"%\(\w+\)[sr]|%[sr]", text))
    return sorted(f"{name}!{conv}" for _, name, _, conv in string.Formatter().parse(text) if name is not None)


# ----------------------------------------------------------------------------- the catalog
def test_every_message_of_the_source_is_translated():
    """A fresh extraction of the source (the same keywords as babel.cfg) finds no message
    that the Russian catalog lacks, and the catalog keeps no message the source dropped."""
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "_setting": (2,)}
    found = {m[2] if isinstance(m[2], str) else m[2][0]
             for m in extract_from_dir(str(SRC), method_map=[("**.py", "python")], keywords=keywords)}
    catalog = _po()
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}
    assert found - ids == set(), "not in the catalog (run pybabel extract/update, then translate)"
    assert ids - found == set(), "in the catalog but no longer in the source"
    untranslated = [m.id for m in catalog if m.id and not all(m.string if isinstance(m.string, tuple) else [m.string])]
    assert untranslated == []
    assert not [m.id for m in catalog if m.id and m.fuzzy]


def test_placeholders_and_plural_forms_match():
    catalog = _po()
    assert catalog.num_plurals == 3  # Russian: 1 эпоха, 2 эпохи, 5 эпох
    for m in catalog:
        if not m.id:
            continue
        for check in checkers:  # Babel's own: python-format and the number of plural forms
            check(catalog, m)
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        for s in strings:
            assert _fields(s) == _fields(ids[-1]), (m.id, s)


def test_the_compiled_catalog_is_the_source_compiled():
    with open(MO, "rb") as f:
        compiled = read_mo(f)
    source = _po()
    def table(catalog):
        return {tuple(m.id) if isinstance(m.id, (list, tuple)) else m.id:
                tuple(m.string) if isinstance(m.string, (list, tuple)) else m.string for m in catalog if m.id}
    assert table(compiled) == table(source)


@pytest.mark.parametrize("n, form", [(1, "1 эпоху"), (2, "2 эпохи"), (4, "4 эпохи"), (5, "5 эпох"), (11, "11 эпох"),
                                     (12, "12 эпох"), (21, "21 эпоху"), (22, "22 эпохи"), (25, "25 эпох"),
                                     (111, "111 эпох"), (0, "0 эпох")])
def test_russian_has_three_plural_forms(n, form):
    with i18n.language("ru"):
        assert i18n.ngettext("{n} epoch", "{n} epochs", n).format(n=n) == form
    assert i18n.ngettext("{n} epoch", "{n} epochs", n).format(n=n) == f"{n} epoch{'' if n == 1 else 's'}"


# ----------------------------------------------------------------------------- choosing
@pytest.mark.parametrize("flag, env, lang", [
    ("ru", {"DELTAPROP_LANG": "en", "LANG": "en_US.UTF-8"}, "ru"),
    ("en", {"DELTAPROP_LANG": "ru"}, "en"),
    (None, {"DELTAPROP_LANG": "ru", "LANG": "en_US.UTF-8"}, "ru"),
    (None, {"DELTAPROP_LANG": "de", "LANG": "ru_RU.UTF-8"}, "ru"),  # no German catalog: on to the locale
    (None, {"LANGUAGE": "de:ru", "LANG": "en_US.UTF-8"}, "ru"),    # LANGUAGE is a list of preferences
    (None, {"LANGUAGE": "", "LC_ALL": "ru_RU.UTF-8", "LANG": "en_US.UTF-8"}, "ru"),
    (None, {"LC_ALL": "C", "LANG": "ru_RU.UTF-8"}, "en"),          # the first set variable decides
    (None, {"LC_MESSAGES": "ru_RU", "LANG": "C.UTF-8"}, "ru"),
    (None, {"LANG": "ru_RU.UTF-8"}, "ru"),
    (None, {"LANG": "ru"}, "ru"),
    (None, {}, "en"),
    (None, {"LANG": "fr_FR.UTF-8"}, "en"),
])
def test_the_language_is_chosen_as_documented(flag, env, lang):
    assert i18n.choose(flag, env) == lang


def test_the_language_is_a_context_not_a_global_install():
    import builtins

    with i18n.language("ru"):
        assert i18n.current() == "ru"
        assert i18n.gettext("Forward pass") == "Прямой проход"
    assert i18n.current() == "en" and i18n.gettext("Forward pass") == "Forward pass"
    assert not hasattr(builtins, "_") or builtins._ is not i18n.gettext
    assert gettext.gettext("options") == "options"  # the global domain untouched
    main(["--lang", "ru", "datasets"])
    import argparse

    assert argparse._ is gettext.gettext  # argparse's words restored after the command


# ----------------------------------------------------------------------------- commands
_NAME = re.compile(r"""
    https?://\S+ | "[^"]*" | «[^»]*» | '[^']*'      # addresses and quoted titles, names, values
    | \[[^\]]*\] | \{[^}]*\}                         # argparse's usage syntax and choices
    | -{1,2}[\w-]+ | \b[\w.+-]*[_\d./=+:][\w.+/=:-]*  # flags, identifiers, numbers, file names
    | \b[A-Z][A-Z0-9]+\b                             # metavars (MODEL, FILE)
""", re.X)
#: Words that are names in both languages: losses, activations, modes, optimizers, engines.
_KEEP = set("""sigmoid tanh relu softmax linear gelu sgd adam rprop irprop quickprop sarprop numpy numba
auto stochastic minibatch batch simultaneous none shared per neuron json text markdown deltaprop float32 float64
mse half_sse cross_entropy ONNX CSV NPY NPZ IDX TOML PNG JSON Markdown LaTeX Dask MNIST RPROP L2 eta
xor parity encoder spirals iris digits true false Dense sd net out dE dout dnet target Matt Mazur pip install plot history regions""".split())


def english_sentences(text: str) -> list[str]:
    """Runs of two or more English words in a row, once names, flags and numbers are taken out
    (a name, a number or a punctuation mark ends a run)."""
    found = []
    for line in text.splitlines():
        run: list[str] = []
        for tok in re.findall(r"[A-Za-z]+(?:'[a-z]+)?|\S", _NAME.sub(" , ", line)) + [","]:
            if tok[0].isascii() and tok[0].isalpha() and tok not in _KEEP and tok.lower() not in _KEEP:
                run.append(tok)
                continue
            if len(run) >= 2:
                found.append(" ".join(run) + f"   <- {line.strip()}")
            run = []
    return found


def test_the_english_detector_finds_english():
    assert english_sentences("final: train loss 0.1254, train accuracy 50.00%")
    assert not english_sentences("итог: потери на обучающей выборке 0.1254, точность 50.00%")


def _run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def _numbers(text: str) -> list[str]:
    return re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", text)


@pytest.mark.parametrize("fmt", ["text", "markdown"])
@pytest.mark.parametrize("steps", ["1", "100"])
def test_explain_in_russian_has_the_same_numbers(capsys, fmt, steps):
    code, en, _err = _run(["explain", "--format", fmt, "--steps", steps], capsys)
    assert code == 0
    code, ru, _err = _run(["explain", "--format", fmt, "--steps", steps, "--lang", "ru"], capsys)
    assert code == 0
    assert _numbers(ru) == _numbers(en)
    assert "Обратный проход: выходной слой" in ru and "Backward pass" not in ru
    assert english_sentences(ru) == []


def test_explain_json_keys_stay_english(capsys):
    import json

    _, en, _ = _run(["explain", "--format", "json"], capsys)
    _, ru, _ = _run(["explain", "--format", "json", "--lang", "ru"], capsys)
    en, ru = json.loads(en), json.loads(ru)

    def keys(o):
        if isinstance(o, dict):
            return sorted(o) + [k for v in o.values() for k in keys(v)]
        if isinstance(o, list):
            return [k for v in o for k in keys(v)]
        return []
    assert keys(ru) == keys(en)
    assert ru["sections"][1]["title"] == "Прямой проход"
    assert [r["value"] for s in ru["sections"] for r in s["rows"]] == \
        [r["value"] for s in en["sections"] for r in s["rows"]]


def test_train_in_russian(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(["train", "--data", "iris", "--epochs", "3", "--lang", "ru", "--out", "m.npz"], capsys)
    assert code == 0, err
    assert "эпоха 1/3" in out and "итог: потери на обучающей выборке" in out and "за 3 эпохи" in out
    assert "модель сохранена в m.npz" in out
    assert english_sentences(out) == []


@pytest.mark.parametrize("command", ["train", "predict", "evaluate", "datasets", "compare", "explain", "export",
                                     "gradcheck", "plot", "plot history"])
def test_every_command_help_in_russian(capsys, command):
    with pytest.raises(SystemExit) as exc:
        main(command.split() + ["--help", "--lang", "ru"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("использование: deltaprop")
    assert "показать эту справку и выйти" in text
    assert english_sentences(text) == []


def test_argparse_errors_in_russian(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--lang", "ru", "trian"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "deltaprop: ошибка: аргумент COMMAND: недопустимый вариант: 'trian'" in err
    with pytest.raises(SystemExit):
        main(["predict", "--lang", "ru"])
    assert "требуются следующие аргументы: model, --data" in capsys.readouterr().err


def test_error_lines_follow_lang_from_the_environment(tmp_path):
    """With LANG=ru_RU.UTF-8 (and nothing else naming a language) a settings error is Russian;
    with --lang en it is English again."""
    env = {"LANG": "ru_RU.UTF-8", "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "deltaprop", "train", "--lr", "-1"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 2
    assert r.stderr == "deltaprop: ошибка: --lr: допустимые значения — число > 0; получено -1.0\n"
    r = subprocess.run(cmd + ["--lang", "en"], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and r.stderr == "deltaprop: error: --lr must be a number > 0, got -1.0\n"


def test_a_toml_error_in_russian(tmp_path, capsys):
    (tmp_path / "run.toml").write_text("epochs = 0\n")
    code, _out, err = _run(["train", "--config", str(tmp_path / "run.toml"), "--lang", "ru"], capsys)
    assert code == 2
    assert err == f"deltaprop: ошибка: {tmp_path / 'run.toml'}: ключ 'epochs': допустимые значения — целое число " \
                  f">= 1; получено 0\n"


def test_library_messages_stay_english_outside_a_language_block():
    from deltaprop.config import TrainConfig
    from deltaprop.errors import ConfigError

    with pytest.raises(ConfigError, match="^lr must be a number > 0, got -1.0$"):
        TrainConfig(lr=-1)
    with i18n.language("ru"), pytest.raises(ConfigError, match="^lr: допустимые значения — число > 0; получено -1.0$"):
        TrainConfig(lr=-1)
