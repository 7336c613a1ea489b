"""Sample sheets and counts tables as spreadsheets save them: encodings, separators, duplicated
columns, absurd numbers and dilutions; and property tests: whatever the bytes, the readers return
rows or raise a one-line BeadsegError."""

import codecs

import pytest
from helpers import assert_refused, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beadseg.core.errors import BeadsegError, InputError
from beadseg.evaluation.dilution_report import dilution_report
from beadseg.evaluation.samples import read_counts, read_sample_sheet

# on top of conftest's "beadseg" profile (derandomized, no database, no deadline)
PROPERTY = settings(
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
COUNTS = "image,count,area_mp\n160x_a_grid_r0_c0,40,0.25\n160x_b,44,0.25\n320x_c,20,0.25\n320x_d,22,0.25\n"
SHEET = "sample,dilution\nS1,160x\nS2,1:320\n"


def one_line(err: BeadsegError) -> str:
    msg = str(err)
    assert msg and "\n" not in msg and "\r" not in msg, repr(msg)
    return msg


def _write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


@pytest.mark.parametrize(
    "encode",
    [
        lambda t: t.encode("utf-8-sig"),  # Excel's "CSV UTF-8"
        lambda t: t.encode("utf-16"),  # Excel's "Unicode text" (with tabs, below)
        lambda t: codecs.BOM_UTF16_BE + t.encode("utf-16-be"),
    ],
    ids=["utf-8-bom", "utf-16", "utf-16-be"],
)
@pytest.mark.parametrize("sep", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_tables_in_excel_encodings_and_separators_read_the_same(encode, sep, tmp_path):
    counts = _write(tmp_path / "c.csv", encode(COUNTS.replace(",", sep)))
    assert read_counts(counts) == read_counts(_write(tmp_path / "ref.csv", COUNTS))
    sheet = _write(tmp_path / "s.csv", encode(SHEET.replace(",", sep)))
    assert read_sample_sheet(sheet).entries == (("sample", "S1", 160), ("sample", "S2", 320))


@pytest.mark.parametrize(
    "data",
    ["image,count,area_mp\nbéad,1,0.2\n".encode("latin-1"), bytes(range(256)) * 3],
    ids=["latin-1", "binary"],
)
def test_a_table_that_is_not_utf8_names_the_file_and_the_fix(data, tmp_path):
    for read in (read_counts, read_sample_sheet):
        with pytest.raises(InputError, match="save the CSV .* as UTF-8") as e:
            read(_write(tmp_path / "t.csv", data))
        assert "t.csv" in one_line(e.value)


@pytest.mark.parametrize(
    "text,read",
    [
        ("image,count,count,area_mp\na,1,2,0.25\n", read_counts),  # before: the second count used
        ("sample,Dilution,dilution\nS1,160,320\n", read_sample_sheet),  # before: 320 used, silently
    ],
)
def test_a_column_named_twice_is_refused(text, read, tmp_path):
    with pytest.raises(InputError, match=r"twice \(columns \d and \d\); keep one"):
        read(_write(tmp_path / "t.csv", text))


@pytest.mark.parametrize(
    "row,words",
    [
        ("160x_a,1e400,0.25", ["count '1e400'"]),  # inf
        ("160x_a,1e300,1e-300", ["area_mp '1e-300'"]),  # a density of 1e600
        ("160x_a,-1,0.25", ["count '-1'"]),
        ("160x_a,nan,0.25", ["count 'nan'"]),
        ("0x_a,3,0.25", ["'0x_a'", "dilution 0"]),  # before: dilution 0, a stock of 0
    ],
)
def test_absurd_counts_areas_and_name_dilutions_are_refused(row, words, tmp_path):
    with pytest.raises(InputError) as e:
        read_counts(_write(tmp_path / "c.csv", f"image,count,area_mp\n{row}\n"))
    msg = one_line(e.value)
    for w in ["line 2", *words]:
        assert w in msg


@pytest.mark.parametrize("value", ["0", "0x", "1:0", "2.5", "0.4", "1" * 400, "1e13"])
def test_a_dilution_that_is_no_whole_factor_from_1_is_refused(value, tmp_path):
    with pytest.raises(InputError, match=f"line 2: dilution '{value[:20]}") as e:
        read_sample_sheet(_write(tmp_path / "s.csv", f"sample,dilution\nS1,{value}\n"))  # 2.5: rounded to 2
    one_line(e.value)


def test_an_empty_counts_table_says_so(tmp_path):
    with pytest.raises(InputError, match="no rows"):
        read_counts(_write(tmp_path / "c.csv", "image,count,area_mp\n"))
    with pytest.raises(InputError, match="has no .* column .its columns: none"):
        read_counts(_write(tmp_path / "c.csv", ""))


def test_cli_dilution_reads_a_semicolon_utf16_table_and_refuses_a_bad_dilution(tmp_path):
    counts, out = _write(tmp_path / "c.csv", COUNTS.replace(",", ";"), "utf-16"), tmp_path / "o"
    r = run_cli("dilution", counts, "--out", out)
    assert r.returncode == 0, r.stderr
    sheet = _write(tmp_path / "s.csv", "image;dilution\n160x_a_grid_r0_c0;2.5\n")
    out2 = tmp_path / "o2"
    assert_refused(run_cli("dilution", counts, "--samples", sheet, "--out", out2), "s.csv", "'2.5'", out=out2)


# ----------------------------------------------------------------------------- properties

COLUMNS = st.sampled_from(["image", "count", "area_mp", "dilution", "source_frame", "sample", "prefix", "x"])
CELLS = st.one_of(
    st.sampled_from(["160x_a", "320X_b_grid_r0_c1", "0x_c", "1:160", "S1", "", "None", "-3", "1e999"]),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.text(max_size=12),
)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"])


@st.composite
def tables(draw):
    """CSV bytes: some of the real columns (maybe twice), rows of random cells (maybe ragged),
    a separator and an encoding."""
    header = draw(st.lists(COLUMNS, min_size=0, max_size=6))
    n = len(header)
    rows = draw(st.lists(st.lists(CELLS, min_size=max(n - 1, 0), max_size=n + 1), max_size=6))
    sep = draw(st.sampled_from([",", ";", "\t"]))
    text = "\n".join(sep.join(r) for r in [header, *rows]) + draw(st.sampled_from(["", "\n", "\r\n"]))
    return text.encode(draw(ENCODINGS), errors="replace")


def _reads_or_refuses(tmp_path, data, sheet_data=None):
    counts = _write(tmp_path / "c.csv", data)
    try:
        sheet = read_sample_sheet(_write(tmp_path / "s.csv", sheet_data)) if sheet_data is not None else None
        rows = read_counts(counts, sheet)
    except BeadsegError as exc:
        one_line(exc)
        return
    for r in rows:  # what is read is usable: finite numbers, whole dilutions from 1
        assert 0 <= r["count"] < float("inf") and 0 < r["area_mp"] < float("inf")
        assert r["dilution"] is None or (isinstance(r["dilution"], int) and r["dilution"] >= 1)
    try:
        dilution_report(counts, samples=tmp_path / "s.csv" if sheet_data is not None else None)
    except BeadsegError as exc:
        one_line(exc)


@PROPERTY
@given(st.binary(max_size=300))
def test_any_bytes_as_a_counts_table_read_or_are_refused_in_one_line(tmp_path, data):
    _reads_or_refuses(tmp_path, data)


@PROPERTY
@given(tables(), st.one_of(st.none(), tables()))
def test_any_table_reads_or_is_refused_in_one_line(tmp_path, counts, sheet):
    _reads_or_refuses(tmp_path, counts, sheet)
