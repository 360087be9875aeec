// Generates the SDF glyph ranges (MapLibre/Mapbox "glyphs" PBF format) that the viewer's labels need
// for Latin letters, digits and punctuation, from a Debian font, into web/fonts/{fontstack}/{range}.pbf.
//
// CJK ideographs are not in these files: MapLibre draws them in the browser from the same installed
// font (see `localIdeographFontFamily` and the fontstack name in web/js/style.js).
//
// How: Debian's chromium (driven by playwright-core) rasterises each character with the installed
// font "Noto Sans CJK SC" (Debian package fonts-noto-cjk, SIL Open Font License 1.1) through
// @mapbox/tiny-sdf — the same signed-distance-field code MapLibre uses for locally drawn glyphs —
// at the parameters of glyph PBFs (24 px, 3 px buffer, radius 8, cutoff 0.25); this script then
// encodes the protobuf by hand (glyphs.proto: fontstack{name, range, glyph{id, bitmap, width,
// height, left, top, advance}}).
//
// Usage: node web/tools/make-glyphs.mjs   (after `npm ci --prefix web` and apt-get install chromium fonts-noto-cjk)
import {readFileSync, writeFileSync, mkdirSync} from 'node:fs';
import {fileURLToPath} from 'node:url';
import path from 'node:path';
import {chromium} from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const webDir = path.resolve(here, '..');
export const FONTSTACK = 'Noto Sans CJK SC';
const FONT_FILE = '/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc';

// Ranges of 256 code points and the code points drawn in each (controls and unassigned left out).
const span = (a, b) => Array.from({length: b - a + 1}, (_, i) => a + i);
const RANGES = {
    0: [...span(0x20, 0x7e), ...span(0xa0, 0xff)],
    256: span(0x100, 0x1ff), // Latin Extended-A/B: pinyin with tone marks
    8192: [...span(0x2010, 0x2027), ...span(0x2030, 0x205e), 0x20ac, 0x20ae, 0x2103, 0x2116, 0x2122, ...span(0x2160, 0x216b), ...span(0x2190, 0x2193)],
};

// --- protobuf encoding (varints, zigzag, length-delimited) ---
function varint(n) {
    const out = [];
    while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128); }
    out.push(n);
    return out;
}
const zigzag = n => (n << 1) ^ (n >> 31);
const key = (field, wire) => varint((field << 3) | wire);
const uintField = (f, v) => [...key(f, 0), ...varint(v >>> 0)];
const sintField = (f, v) => [...key(f, 0), ...varint(zigzag(v) >>> 0)];
const bytesField = (f, bytes) => [...key(f, 2), ...varint(bytes.length), ...bytes];
const strField = (f, s) => bytesField(f, [...Buffer.from(s, 'utf8')]);

function encodeGlyph(g) {
    return [
        ...uintField(1, g.id),
        ...(g.bitmap.length ? bytesField(2, g.bitmap) : []),
        ...uintField(3, g.width), ...uintField(4, g.height),
        ...sintField(5, g.left), ...sintField(6, g.top),
        ...uintField(7, g.advance),
    ];
}
function encodeRange(name, range, glyphs) {
    const stack = [...strField(1, name), ...strField(2, range)];
    for (const g of glyphs) stack.push(...bytesField(3, encodeGlyph(g)));
    return Buffer.from(bytesField(1, stack));
}

async function main() {
    readFileSync(FONT_FILE); // fails clearly when fonts-noto-cjk is missing
    const tinySdf = readFileSync(path.join(webDir, 'node_modules/@mapbox/tiny-sdf/index.js'), 'utf8')
        .replace('export default class TinySDF', 'window.TinySDF = class TinySDF');
    const browser = await chromium.launch({
        executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    try {
        const page = await browser.newPage();
        await page.setContent('<!doctype html><meta charset="utf-8"><body></body>');
        await page.addScriptTag({content: tinySdf});
        const result = await page.evaluate(async ({family, ranges}) => {
            await document.fonts.load(`24px "${family}"`);
            if (!document.fonts.check(`24px "${family}"`)) throw new Error(`font ${family} is not installed`);
            // Metric probe: the font must be the CJK one (full-width ideograph advance of 24 px at 24 px).
            const sdf = new window.TinySDF({fontSize: 24, buffer: 3, radius: 8, cutoff: 0.25, fontFamily: `"${family}"`});
            const out = {};
            for (const [start, cps] of Object.entries(ranges)) {
                out[start] = cps.map(cp => {
                    const c = sdf.draw(String.fromCodePoint(cp));
                    return {
                        id: cp, bitmap: Array.from(c.data), width: c.glyphWidth, height: c.glyphHeight,
                        // MapLibre's server-glyph origin: see topAdjustment/leftAdjustment in its glyph_manager.
                        left: c.glyphLeft, top: c.glyphTop - 28, advance: Math.round(c.glyphAdvance),
                    };
                });
            }
            out.probe = sdf.draw('\u6d4b').glyphAdvance;
            return out;
        }, {family: FONTSTACK, ranges: RANGES});
        if (Math.round(result.probe) !== 24) throw new Error(`unexpected ideograph advance ${result.probe}: wrong font?`);
        const dir = path.join(webDir, 'fonts', FONTSTACK);
        mkdirSync(dir, {recursive: true});
        for (const start of Object.keys(RANGES)) {
            const name = `${start}-${Number(start) + 255}`;
            const buf = encodeRange(FONTSTACK, name, result[start]);
            writeFileSync(path.join(dir, `${name}.pbf`), buf);
            console.log(`${FONTSTACK}/${name}.pbf: ${result[start].length} glyphs, ${buf.length} bytes`);
        }
    } finally {
        await browser.close();
    }
}

await main();
