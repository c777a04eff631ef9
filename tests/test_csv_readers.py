"""The fast CSV reader (pyarrow, else np.loadtxt) against the exact one (the csv module): the
same Dataset for every file, the same message for every bad one, and the memory it takes."""

import gzip
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deltaprop.data.csvfile as csvfile
from deltaprop.errors import DataError

FAST = ["numpy", pytest.param("pyarrow", marks=pytest.mark.skipif(
    not __import__("importlib").util.find_spec("pyarrow"), reason="deltaprop[csv] (pyarrow) not installed"))]


def _outcome(monkeypatch, reader, path, **kwargs):
    """What ``load_csv`` gives with ``reader``: the Dataset's parts, or the error message."""
    monkeypatch.setattr(csvfile, "READER", reader)
    try:
        ds = csvfile.load_csv(path, **kwargs)
    except DataError as exc:
        return ("error", str(exc))
    return ("ok", ds.X.dtype.str, ds.X.tobytes(), ds.X.shape, ds.T.tobytes(), ds.T.shape, ds.task, ds.classes,
            ds.feature_names, ds.target_names, ds.categories, ds.name)


# Cells a user's file may hold: numbers written many ways, and what is not a number.
NUMBERS = ["0", "1", "-3", "+7", "2.5", "-0.125", "1e3", "1.5E-7", " 4 ", "+.5", "1.", "-0", "0.1",
           "12345678901234567", "3.0", "1e308", "4.9e-324", "0.30000000000000004", '"6"', " 8\t"]
BAD = ["", " ", "x", "nan", "inf", "-Infinity", "1e400", "1_0", "0x10", "True", "1,5", "٣", '" 2"', "1e"]
WORDS = ["cat", "dog", "bird", " cat", '"a, b"', '"say ""hi"""', "ünï", "1", "2", "x y"]


@st.composite
def csv_files(draw):
    """A file's bytes, its target and the keyword arguments: mostly valid, sometimes one flaw."""
    width = draw(st.integers(2, 5))
    n = draw(st.integers(1, 7))
    delim = draw(st.sampled_from([",", ";", "\t", "|"]))
    names = [f"c{i}" for i in range(width)]
    kinds = draw(st.lists(st.sampled_from(["num", "num", "int", "word"]), min_size=width, max_size=width))
    t = draw(st.integers(0, width - 1))
    rows = []
    for _ in range(n):
        row = []
        for k in kinds:
            if k == "word":
                row.append(draw(st.sampled_from(WORDS)))
            elif k == "int":
                row.append(str(draw(st.integers(0, 3))))
            else:
                row.append(draw(st.sampled_from(NUMBERS)) if draw(st.integers(0, 3)) else
                           repr(draw(st.floats(-1e6, 1e6, allow_nan=False))))
        rows.append(row)
    flaw = draw(st.sampled_from(["none", "bad cell", "bad cell", "ragged", "blank lines", "empty row", "bad target"]))
    if flaw == "bad cell":
        nums = [i for i, k in enumerate(kinds) if k != "word"] or [0]
        rows[draw(st.integers(0, n - 1))][draw(st.sampled_from(nums))] = draw(st.sampled_from(BAD))
    elif flaw == "ragged":
        r = draw(st.integers(0, n - 1))
        rows[r] = rows[r][:-1] if draw(st.booleans()) else rows[r] + ["9"]
    elif flaw == "bad target":
        rows[draw(st.integers(0, n - 1))][t] = draw(st.sampled_from(["", " ", "nan"]))
    lines = [delim.join(names)] + [delim.join(r) for r in rows]
    if flaw == "blank lines":
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(["", "   ", delim * (width - 1)])))
    elif flaw == "empty row":
        lines.insert(draw(st.integers(1, len(lines))), delim.join([""] * width))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(lines) + draw(st.sampled_from([eol, ""]))
    data = (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + text.encode()
    words = [names[i] for i, k in enumerate(kinds) if k == "word" and i != t]
    kwargs = {"target": names[t]}
    if words:
        kwargs["categorical"] = words
    if draw(st.booleans()) and width > 2:  # several targets: the numeric columns but one
        nums = [names[i] for i, k in enumerate(kinds) if k != "word"]
        if len(nums) >= 3:
            kwargs["target"] = ",".join(nums[:2])
    return data, kwargs


@pytest.mark.parametrize("reader", FAST)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=csv_files(), gz=st.booleans())
def test_fast_reader_gives_what_the_exact_reader_gives(tmp_path, monkeypatch, reader, case, gz):
    data, kwargs = case
    path = tmp_path / ("f.csv.gz" if gz else "f.csv")
    path.write_bytes(gzip.compress(data) if gz else data)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "nearly one class per row" on tiny files: both readers warn
        exact = _outcome(monkeypatch, "exact", path, **kwargs)
        fast = _outcome(monkeypatch, reader, path, **kwargs)
    assert fast == exact


BAD_FILES = [
    "a,b,t\n1,2,0\n3,4\n", "a,b,t\n1,2,0\n3,4,5,6\n", "a,b,t\n1,2,0\n3,x4,1\n", "a,b,t\n1,,0\n",
    "a,b,t\n1,nan,0\n", "a,b,t\n1,inf,0\n", "a,b,t\n1,1e400,0\n", "a,b,t\n", "", "\n\n", "a,a,t\n1,2,0\n",
    "a,b,t\n1,2,\n", "a,b,t\n1,2,nan\n", "a,,t\n1,2,3\n", "a,b,t\n1,True,0\n",
    'a,b,t\n1,"2\n3",0\n', "a,b,t\n1,2,0\n   \n3,4,1\n", "a,b,t\n1,2,0\n,,\n3,4,1\n",
]


@pytest.mark.parametrize("reader", FAST)
@pytest.mark.parametrize("text", BAD_FILES)
def test_flawed_files_read_as_the_exact_reader_reads_them(tmp_path, monkeypatch, reader, text):
    path = tmp_path / "f.csv"
    path.write_text(text, encoding="utf-8", newline="")
    assert _outcome(monkeypatch, reader, path, target="t") == _outcome(monkeypatch, "exact", path, target="t")


def test_a_lone_carriage_return_is_a_line_break_to_the_fast_reader(tmp_path, monkeypatch):
    """The one known difference: a CR alone inside a file of LF lines. The csv module calls it
    malformed; the C parsers (like pandas) read it as a line break."""
    path = tmp_path / "f.csv"
    path.write_bytes(b"a,b,t\n1,2,0\n3,4,5\r6,7,8\n")
    assert "malformed CSV" in _outcome(monkeypatch, "exact", path, target="t")[1]
    for reader in ("numpy",) + (("pyarrow",) if __import__("importlib").util.find_spec("pyarrow") else ()):
        monkeypatch.setattr(csvfile, "READER", reader)
        np.testing.assert_array_equal(csvfile.load_csv(path, "t").X, [[1, 2], [3, 4], [6, 7]])


VALID = {
    "numbers": ("a,b,y\n1,2.5,0.5\n-3,4e2,1.5\n0,0.25,2\n", {"target": "y"}),
    "labels": ("a;b;kind\n1;2;cat\n3;4;dog\n5;6;cat\n7;8;bird\n", {"target": "kind"}),
    "integer labels": ("a,b,y\n1,2,0\n3,4,1\n5,6,2\n", {"target": "y"}),
    "categorical": ("legs,colour,kind\n4,red,cat\n2,blue,bird\n4,red,dog\n", {"target": "kind",
                                                                            "categorical": ["colour"]}),
    "several targets": ("x,a,b\n1,2,3\n4,5,6\n7,8,9.5\n", {"target": "a,b"}),
    "R quoting, CRLF": ('"x","y","kind"\r\n1.5,2,"a, b"\r\n3,4,"c"\r\n', {"target": "kind"}),
    "BOM, blank lines, tabs": ("\ufeff\n\nx\ty\n1\t2\n\n3\t4\n", {"target": "y"}),
    "ignored column": ("a,skip,b,y\n1,zz,2,3\n4,yy,5,6\n", {"target": "y", "features": ["b", "a"]}),
    "inputs only": ("a,b\n1,2\n3,4\n", {"target": None}),
}


@pytest.mark.parametrize("reader", FAST)
@pytest.mark.parametrize("case", sorted(VALID))
def test_valid_files_take_the_fast_path(tmp_path, monkeypatch, reader, case):
    text, kwargs = VALID[case]
    path = tmp_path / "f.csv"
    path.write_text(text, encoding="utf-8", newline="")
    exact = _outcome(monkeypatch, "exact", path, **kwargs)
    assert exact[0] == "ok"

    def no_exact(*args):
        raise AssertionError("the exact reader was used")
    monkeypatch.setattr(csvfile, "_load_exact", no_exact)
    assert _outcome(monkeypatch, reader, path, **kwargs) == exact


@pytest.mark.parametrize("reader", FAST)
def test_bad_cell_message_names_line_and_column_whichever_reader(tmp_path, monkeypatch, reader):
    rows = "\n".join(f"{i},{i * 0.5}" for i in range(3000))
    path = tmp_path / "f.csv"
    path.write_text(f"a,y\n{rows}\nx,7\n")
    assert _outcome(monkeypatch, reader, path, target="y") == (
        "error", f"{path}: line 3002, column 'a': 'x' is not a number (declare 'a' categorical to one-hot encode it)")


def test_numpy_reader_memory_stays_within_twice_the_arrays(tmp_path, monkeypatch):
    """tracemalloc sees NumPy's and Python's allocations: loadtxt's array grows in place and the
    feature columns are taken out of it in place, so the peak stays below 2x X and T."""
    rng = np.random.default_rng(0)
    path = tmp_path / "big.csv"
    with open(path, "w") as f:
        f.write(",".join(f"x{i}" for i in range(19)) + ",y\n")
        np.savetxt(f, rng.standard_normal((40_000, 20)), fmt="%.6f", delimiter=",")
    monkeypatch.setattr(csvfile, "READER", "numpy")
    tracemalloc.start()
    try:
        ds = csvfile.load_csv(path, "y")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = ds.X.nbytes + ds.T.nbytes
    assert ds.X.shape == (40_000, 19) and ds.X.flags.c_contiguous
    assert peak < 2 * size, peak / size


def test_take_columns_in_place_equals_fancy_indexing():
    rng = np.random.default_rng(1)
    for n, w, cols in [(10, 5, [0, 2, 4]), (70_000, 7, [6, 0, 3]), (3, 3, [1]), (5, 4, [])]:
        A = rng.standard_normal((n, w))
        want = A[:, cols].copy()
        got = csvfile._take_columns(A, cols)
        np.testing.assert_array_equal(got, want)
        assert got.shape == (n, len(cols)) and got.flags.c_contiguous
