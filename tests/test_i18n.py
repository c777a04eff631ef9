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


# ----------------------------------------------------------------------------- every command, in Russian
@pytest.fixture(scope="module")
def xor_model(tmp_path_factory):
    """A small saved model (xor, 2-2-1) with its history file, for the commands that read one."""
    import contextlib
    import io

    folder = tmp_path_factory.mktemp("ru")
    path = folder / "xor.npz"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", "--data", "xor", "--epochs", "30", "--seed", "1", "--out", str(path)]) == 0
    return path


def _both(argv, capsys):
    """The command in English and in Russian: ``(en_out, ru_out, en_err, ru_err)``; the exit
    codes must agree."""
    code_en, en, en_err = _run(argv + ["--lang", "en"], capsys)
    code_ru, ru, ru_err = _run(argv + ["--lang", "ru"], capsys)
    assert code_en == code_ru, (en_err, ru_err)
    return en, ru, en_err, ru_err


def test_gradcheck_in_russian_has_the_english_numbers(capsys):
    en, ru, _, _ = _both(["gradcheck", "--sizes", "2,3,2", "--samples", "4"], capsys)
    assert "наибольшая относительная ошибка:" in ru and "все 17 параметров" in ru and "OK:" in ru
    assert english_sentences(ru) == []
    en_lines, ru_lines = en.splitlines(), ru.splitlines()
    assert len(en_lines) == len(ru_lines)
    for e, r in zip(en_lines, ru_lines):
        if not e.startswith(("backprop:", "finite differences:")):  # timings differ from run to run
            assert _numbers(r) == _numbers(e), (e, r)


def test_a_failed_gradcheck_and_a_relu_kink_in_russian(capsys):
    """The failure line and the ReLU note (forced with a tolerance no check meets and a step
    large enough to put pre-activations near the kink)."""
    argv = ["gradcheck", "--sizes", "3,12,2", "--activation", "relu", "--samples", "16", "--step", "0.5",
            "--tol", "1e-30"]
    en, ru, en_err, ru_err = _both(argv, capsys)
    assert "deltaprop: проверка градиента не пройдена" in ru_err
    assert english_sentences(ru) == [] and english_sentences(ru_err) == []
    assert "pre-activations lie within a step of a ReLU kink" in en  # the setup does reach the kink
    assert "предактивации лежат в пределах шага от излома ReLU" in ru and "излома ReLU" in ru_err

    assert _numbers(ru_err) == _numbers(en_err)


def test_cost_table_in_russian(capsys):
    argv = ["gradcheck", "--cost-table", "--table-sizes", "2,2,2;3,4,2", "--batch", "4", "--repeats", "1",
            "--budget", "0.05"]
    en, ru, _, _ = _both(argv, capsys)
    assert english_sentences(ru) == []
    assert "по 4 примерам" in ru and "отношение растёт как P^" in ru
    # architecture, parameter count and the (seeded) error agree row by row; the rest are timings
    rows = [(e.split(), r.split()) for e, r in zip(en.splitlines()[1:3], ru.splitlines()[1:3])]
    assert [(r[:2], r[-1]) for _, r in rows] == [(e[:2], e[-1]) for e, _ in rows]


def test_predict_and_evaluate_in_russian(capsys, xor_model):
    en, ru, _, _ = _both(["predict", str(xor_model), "--data", "xor", "--proba"], capsys)
    assert ru == en  # a CSV file: its column names are data, not prose
    en, ru, _, _ = _both(["evaluate", str(xor_model), "--data", "xor"], capsys)
    assert ru.startswith("4 примера: потери") and "точность" in ru
    assert english_sentences(ru) == [] and _numbers(ru) == _numbers(en)


def test_export_in_russian(capsys, xor_model, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    code, en, _ = _run(["export", str(xor_model), str(tmp_path / "en.onnx"), "--check"], capsys)
    assert code == 0
    code, ru, err = _run(["export", str(xor_model), str(tmp_path / "ru.onnx"), "--check", "--lang", "ru"], capsys)
    assert code == 0, err
    assert "записан файл" in ru and "проверено в onnxruntime на 256 случайных входах" in ru
    assert english_sentences(ru) == []
    assert _numbers(ru.replace("ru.onnx", "en.onnx")) == _numbers(en)


def test_plot_history_in_russian(capsys, xor_model, tmp_path):
    pytest.importorskip("matplotlib")
    code, ru, err = _run(["plot", "history", str(xor_model), "--out", str(tmp_path / "h.png"), "--lang", "ru"],
                         capsys)
    assert code == 0, err
    assert ru == f"записан файл {tmp_path / 'h.png'}\n"
    code, ru, err = _run(["plot", "regions", str(xor_model), "--out", str(tmp_path / "r.png"), "--lang", "ru"],
                         capsys)
    assert code == 0, err
    assert "примечание: нарисовано в пределах обучающих данных xor" in ru and english_sentences(ru) == []


def test_datasets_in_russian(capsys):
    en, ru, _, _ = _both(["datasets"], capsys)
    assert "таблица истинности XOR" in ru and "ирисы Фишера, 3 вида" in ru
    assert english_sentences(ru) == [] and _numbers(ru) == _numbers(en)


def _junk(path):
    path.write_bytes(b"not a model at all")
    return path


def _npy(path):
    np = pytest.importorskip("numpy")
    np.save(path, np.ones((3, 2)))
    return path


@pytest.mark.parametrize("argv, expected", [
    (lambda d, m: ["evaluate", str(d / "missing.npz"), "--data", "xor"], "missing.npz: нет такого файла"),
    (lambda d, m: ["predict", str(_junk(d / "junk.npz")), "--data", "xor"],
     "junk.npz: это не файл модели deltaprop (не архив .npz)"),
    (lambda d, m: ["evaluate", str(m), "--data", str(_npy(d / "a.npy")), "--target", "5"],
     "в данных нет столбцов признаков модели: a, b"),
    (lambda d, m: ["export", str(m), str(m)], "уже существует; чтобы перезаписать, укажите --force"),
    (lambda d, m: ["gradcheck", "--order", "3"], "--order: допустимые значения — 2 или 4; получено 3"),
    (lambda d, m: ["gradcheck", "--sizes", "2,x"], "--sizes: нужны целые числа через запятую"),
    (lambda d, m: ["gradcheck", "--model", str(m)], "--model требует --data"),
    (lambda d, m: ["gradcheck", "--sizes", "2,2", "--loss", "cross_entropy", "--output-activation", "tanh"],
     "функции потерь 'cross_entropy' нужны выходы в (0, 1)"),
    (lambda d, m: ["explain", "--model", str(m), "--input", "1", "--target", "1"],
     "у входа 1 значение, а модель принимает 2 (a, b)"),
    (lambda d, m: ["explain", "--input", "1,2,3"], "у входа 3 значения, но у сети 2 входа"),
    (lambda d, m: ["explain", "--model", str(m), "--input", "1,2", "--target", "1,2,3"],
     "цель должна состоять из 1 числа через запятую или быть одной меткой класса (0, 1); получено '1,2,3'"),
    (lambda d, m: ["train", "--data", "xor", "--hidden", "0", "--epochs", "1"], ""),
])
def test_error_lines_in_russian(capsys, tmp_path, xor_model, argv, expected):
    """One error line, in Russian, with the English line's numbers; nothing of it English but names."""
    args = argv(tmp_path, xor_model)
    code_en, _, en_err = _run(args + ["--lang", "en"], capsys)
    code, _, err = _run(args + ["--lang", "ru"], capsys)
    assert code == code_en == 2
    assert err.startswith("deltaprop: ошибка: ") and err.count("\n") == 1, err
    assert expected in err
    assert english_sentences(err) == []
    assert _numbers(err) == _numbers(en_err)


@pytest.mark.parametrize("n, form", [(1, "1 признак"), (3, "3 признака"), (5, "5 признаков"), (21, "21 признак")])
def test_library_errors_take_the_number_s_form(n, form):
    """A number in an error decides its noun's form (English keeps its one form)."""
    import numpy as np

    from deltaprop.errors import DataError
    from deltaprop.model import Model
    from deltaprop.network import Network

    model = Model(Network([n, 1], seed=0))
    with i18n.language("ru"), pytest.raises(DataError, match=f"а модель принимает {form} "):
        model.prepare(np.ones((2, n + 1)))
    with pytest.raises(DataError, match=f"but the model takes {n} features"):
        model.prepare(np.ones((2, n + 1)))


def test_sizes_and_times_use_russian_units():
    from deltaprop.gradcheck_report import format_seconds
    from deltaprop.memory import format_bytes

    with i18n.language("ru"):
        assert [format_seconds(t) for t in (2e-6, 0.0123, 4.5, 600.0)] == ["2 мкс", "12.3 мс", "4.5 с", "600 с (10 мин)"]
        assert [format_bytes(b) for b in (1, 3, 5, 2.5e9)] == ["1 байт", "3 байта", "5 байт", "2.5 ГБ"]
    assert format_bytes(5) == "5 bytes" and format_seconds(0.0123) == "12.3 ms"


# ----------------------------------------------------------------------------- compare, CSV, Dask, plots, divergence
def test_compare_in_russian(capsys, tmp_path):
    """A tiny comparison: its settings, table, skipped cells and written files in Russian, with
    the English run's numbers."""
    argv = ["compare", "--problems", "xor", "--techniques", "gd,rprop-", "--seeds", "2", "--epochs", "20",
            "--no-timing", "--no-plots"]
    code_en, en, _ = _run(argv + ["--out-dir", str(tmp_path / "en"), "--lang", "en"], capsys)
    code_ru, ru, err = _run(argv + ["--out-dir", str(tmp_path / "ru"), "--lang", "ru"], capsys)
    assert code_en == code_ru == 0, err
    assert "not run (2 cells)" in en and "written: " in en  # the English run has the lines checked below
    assert "бюджет эпох: 20" in ru and "'gd': 'обычный градиентный спуск'" in ru
    assert "задача  режим" in ru and "не запущены 2 ячейки" in ru and "rprop- в режиме minibatch" in ru
    assert "записаны файлы: " in ru
    assert english_sentences(ru) == []
    assert _numbers(ru) == _numbers(en)


def _csv(path, text):
    path.write_text(text)
    return path


def _regression_csv(path, n=60):
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3))
    y = X @ [1.5, -2.0, 0.5] + 0.1 * rng.normal(size=n)
    path.write_text("a,b,c,y\n" + "".join(f"{a:.4f},{b:.4f},{c:.4f},{t:.4f}\n" for (a, b, c), t in zip(X, y)))
    return path


@pytest.mark.parametrize("argv, expected", [
    (lambda d: ["train", "--data", str(_csv(d / "bad.csv", "a,b,y\n1,2,3\n4,x,5\n")), "--target", "y"],
     "bad.csv: строка 3, столбец 'b': 'x' — не число (объявите 'b' категориальным"),
    (lambda d: ["train", "--data", str(_csv(d / "nan.csv", "a,b,y\n1,2,3\n4,nan,5\n")), "--target", "y"],
     "nan.csv: строка 3, столбец 'b': 'nan' — не конечное число (NaN/inf)"),
    (lambda d: ["train", "--data", str(_csv(d / "ragged.csv", "a,b,y\n1,2,3\n4,5\n")), "--target", "y"],
     "ragged.csv: в строке 3 ячеек: 2, а в заголовке: 3 (неровная строка)"),
    (lambda d: ["train", "--data", str(_csv(d / "cols.csv", "a,b,y\n1,2,3\n")), "--target", "z"],
     "cols.csv: нет целевого столбца 'z'; столбцы файла: a, b, y"),
    (lambda d: ["train", "--data", "xor", "--dask", "localhost"],
     "--dask: допустимые значения — local:N или tcp://HOST:PORT; получено 'localhost'"),
    (lambda d: ["train", "--data", "xor", "--dask", "local:0"], "--dask local:N: N — число рабочих процессов"),
    (lambda d: ["compare", "--problems", "xor", "--modes", "fast"], "неизвестные режимы 'fast'; допустимые:"),
    (lambda d: ["compare", "--problems", "xor", "--success", "loss<=1e"], "критерий успеха 'loss<=1e': '1e' — не число"),
])
def test_data_cluster_and_compare_errors_in_russian(capsys, tmp_path, argv, expected):
    """A bad CSV cell names its row and column in Russian; so do a bad --dask value and compare's
    settings errors (exit 2, the English line's numbers, no English sentence)."""
    args = argv(tmp_path)
    code_en, _, en_err = _run(args + ["--lang", "en"], capsys)
    code, _, err = _run(args + ["--lang", "ru"], capsys)
    assert code == code_en == 2, err
    assert err.startswith("deltaprop: ошибка: ") and err.count("\n") == 1, err
    assert expected in err
    assert english_sentences(err) == []
    assert _numbers(err) == _numbers(en_err)


def test_regression_defaults_line_in_russian(capsys, tmp_path):
    """Regression from a CSV file without --epochs: the line naming the task's own defaults
    (config.TASK_DEFAULTS), the units note, the epoch lines and the final line."""
    data = _regression_csv(tmp_path / "reg.csv")
    en, ru, _, ru_err = _both(["train", "--data", str(data), "--target", "y"], capsys)
    assert "regression defaults: up to 200 epochs, early stopping after 10 epochs" in en
    assert "значения по умолчанию для задачи «регрессия»: до 200 эпох, ранняя остановка после 10 эпох" in ru
    assert "R²" in ru and ru_err == ""
    assert english_sentences(ru) == []
    assert _numbers(ru) == _numbers(en)


def test_divergence_and_warning_lines_in_russian(capsys, tmp_path):
    """An exploding loss: the halve-lr notes (training events) and the stop line on stderr; a
    clipped batch size's warning line."""
    data = str(_regression_csv(tmp_path / "reg.csv"))
    en, ru, _, _ = _both(["train", "--data", data, "--target", "y", "--lr", "10", "--epochs", "5",
                          "--on-divergence", "halve-lr"], capsys)
    assert "rolled back to the last good epoch and halved the learning rate to 5" in en
    assert "примечание: эпоха 1: потери выросли с " in ru
    assert "скорость обучения уменьшена вдвое, до 5 (уменьшение 1 из не более чем 10)" in ru
    assert english_sentences(ru) == [] and _numbers(ru) == _numbers(en)

    code_en, en, en_err = _run(["train", "--data", data, "--target", "y", "--lr", "10", "--epochs", "5",
                                "--lang", "en"], capsys)
    code, ru, ru_err = _run(["train", "--data", data, "--target", "y", "--lr", "10", "--epochs", "5",
                             "--lang", "ru"], capsys)
    assert code == code_en == 1
    assert "training stopped and the weights of the last good epoch were kept" in en_err
    assert ru_err.startswith("deltaprop: обучение разошлось: потери выросли с ")
    assert "(попробуйте меньшую скорость обучения или on_divergence='halve-lr' (--on-divergence halve-lr))" in ru_err
    assert english_sentences(ru_err) == [] and _numbers(ru_err) == _numbers(en_err)

    en, ru, en_err, ru_err = _both(["train", "--data", "xor", "--mode", "minibatch", "--batch-size", "9",
                                    "--epochs", "1"], capsys)
    assert "deltaprop: warning: batch size 9 is larger than the 4 training samples; using 4" in en_err
    assert "deltaprop: предупреждение: размер мини-пакета 9 больше числа обучающих примеров (4); берётся 4" \
        in ru_err
    assert english_sentences(ru_err) == [] and _numbers(ru_err) == _numbers(en_err)


def test_training_events_keep_english_details_and_print_russian():
    """History files keep each event's English detail (plot.py reads 'restored' there); what is
    printed comes from its parts, in the language in force."""
    import numpy as np

    from deltaprop.network import Network
    from deltaprop.training import EarlyStopping, Trainer

    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    T = np.array([[0], [1], [1], [0]], float)
    with i18n.language("ru"):
        tr = Trainer(Network([2, 2, 1], seed=0), lr=0.01, mode="batch", seed=0,
                     callbacks=[EarlyStopping(patience=1, min_delta=1.0)])
        h = tr.fit(X, T, epochs=5, validation_data=(X, T))
        ev = h.events[-1]
        assert ev["event"] == "early_stopping"
        assert ev["detail"].startswith("no val_loss improvement for 1 epochs; best ")
        assert ev["detail"].endswith("; its weights restored")
        assert i18n.event_text(ev).startswith("val_loss не улучшается; эпох подряд без улучшения: 1; лучшее значение ")
    assert i18n.event_text(ev) == ev["detail"]
    assert i18n.event_text({"detail": "an old file's event"}) == "an old file's event"


def _figure_texts(fig) -> list[str]:
    """Every text of a matplotlib figure: titles, axis labels, legend entries, notes, tick labels."""
    from matplotlib.text import Text

    texts = [t.get_text() for t in fig.findobj(Text)]
    for ax in fig.axes:  # a line's label is only drawn in a legend, but the legend is what is read
        texts += [ln.get_label() for ln in ax.get_lines() if not ln.get_label().startswith("_")]
    return [t for t in texts if t.strip()]


def test_plot_labels_in_russian(xor_model):
    """The pictures' words (titles, axes, legends, notes) in Russian, their numbers the English
    ones: the matplotlib figures' text, not pixels."""
    pytest.importorskip("matplotlib")
    from deltaprop.data import load_builtin
    from deltaprop.model import Model
    from deltaprop.plot import history_path, load_history, plot_history, plot_network, plot_regions

    history = load_history(history_path(xor_model))
    history.events.append({"epoch": 20, "event": "early_stopping",
                           "detail": "no val_loss improvement for 5 epochs; best 0.1 at epoch 15; its weights restored"})
    model, data = Model.load(xor_model), load_builtin("xor")
    texts = {}
    for lang in ("en", "ru"):
        with i18n.language(lang):
            figs = [plot_history(history), plot_network(model), plot_regions(model, data)]
            texts[lang] = [_figure_texts(f) for f in figs]
    en, ru = ["\n".join(t) for t in texts["en"]], ["\n".join(t) for t in texts["ru"]]
    assert "training loss (after the epoch)" in en[0] and "best weights restored" in en[0]
    assert "потери на обучающей выборке (после эпохи)" in ru[0] and "история обучения" in ru[0]
    assert "ранняя остановка (эпоха 20); восстановлены лучшие весовые коэффициенты" in ru[0]
    assert "положительный вес" in ru[1] and "2 нейрона" in ru[1] and "1 нейрон" in ru[1]
    assert "области решений" in ru[2] and "граница решений, P = 0.5" in ru[2]
    for e, r in zip(en, ru):
        assert english_sentences(r) == [], r
        assert _numbers(r) == _numbers(e)


def test_registry_names_in_russian():
    from deltaprop.errors import ConfigError
    from deltaprop.optimizers import get_optimizer

    with i18n.language("ru"), pytest.raises(ConfigError, match="^неизвестный оптимизатор 'foo'; допустимые: adam, "):
        get_optimizer("foo")
    with pytest.raises(ConfigError, match="^unknown optimizer 'foo'; valid: adam, "):
        get_optimizer("foo")
