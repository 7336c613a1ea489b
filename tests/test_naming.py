from beadseg.core.naming import parse_name


def test_real_tile_name():
    t = parse_name("320x_2025-05-16_00-59-00_grid_r3_c1.png")
    assert t.source_frame == "320x_2025-05-16_00-59-00"
    assert t.dilution == 320
    assert (t.row, t.col) == (3, 1)


def test_dilution_whole_number_and_suffix():
    t = parse_name("10240x_2025-05-29_02-22-00_002_grid_r3_c7.png")
    assert t.dilution == 10240
    assert t.source_frame == "10240x_2025-05-29_02-22-00_002"


def test_no_grid_no_dilution():
    t = parse_name("synthetic_80x_3_2025.png")
    assert t.source_frame == "synthetic_80x_3_2025"
    assert t.dilution is None and t.row is None and t.col is None


def test_not_a_dilution_token():
    assert parse_name("320xyz_a.png").dilution is None
    assert parse_name("x160_a.png").dilution is None
    assert parse_name("a_160x.png").dilution is None
    assert parse_name("20x.png").dilution == 20


def test_upper_case_x_is_a_dilution_too():
    assert parse_name("160X_2025-05-16_grid_r0_c1.png").dilution == 160
    assert parse_name("160X_2025-05-16_grid_r0_c1.png").source_frame == "160X_2025-05-16"


def test_dilution_rule_is_stated_in_help(capsys):
    import pytest

    from beadseg.cli.app import main

    for cmd in ("dilution", "analyze"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "<number>x" in text and "160X_" in text
