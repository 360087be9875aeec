// Map style pieces: the empty base style (no internet basemap: the admin boundaries are the
// basemap), colours, station icons drawn on a canvas, and expression helpers.

/** The fontstack of every label: Latin ranges served as PBFs from web/fonts/, ideographs drawn locally. */
export const FONT = ['Noto Sans CJK SC'];
export const LOCAL_IDEOGRAPHS = "'Noto Sans CJK SC', 'Noto Sans CJK', sans-serif";

export const LEVELS = ['province', 'city', 'county', 'township', 'village'];
/** Digits of a statistical code at each level. */
export const CODE_LEN = {province: 2, city: 4, county: 6, township: 9, village: 12};

/** Coverage classes (lower bound, colour), worst first. */
export const COVERAGE_CLASSES = [
    [0, '#d73027'],
    [0.5, '#fc8d59'],
    [0.7, '#fee08b'],
    [0.85, '#a6d96a'],
    [0.95, '#1a9850'],
];
export const NO_DATA = '#c8c8c8';
export const LEVEL_COLORS = {province: '#6a1b9a', city: '#1565c0', county: '#00838f', township: '#ef6c00', village: '#5d4037'};
export const GAP_COLOR = '#c2185b';
export const PROPOSED_COLOR = '#7b1fa2';

export function baseStyle(origin) {
    return {
        version: 8,
        glyphs: `${origin}/fonts/{fontstack}/{range}.pbf`,
        sources: {},
        layers: [{id: 'background', type: 'background', paint: {'background-color': '#eef1f4'}}],
    };
}

/** A boolean property that may come as true, "true" or 1. */
export const isTrue = prop => ['any', ['==', ['get', prop], true], ['==', ['get', prop], 'true'], ['==', ['get', prop], 1]];

/** Fill colour by `coverage_share` (grey where the unit has no households). */
export function coverageColor() {
    const steps = ['step', ['to-number', ['get', 'coverage_share'], -1], NO_DATA];
    for (const [lo, color] of COVERAGE_CLASSES) steps.push(lo, color);
    return [
        'case',
        ['any', ['!', ['has', 'coverage_share']], ['==', ['to-number', ['get', 'households'], 0], 0]], NO_DATA,
        steps,
    ];
}

/** Effective-coverage classes: the same steps as coverage, of the share of households contacted. */
export const EFFECTIVE_CLASSES = COVERAGE_CLASSES;
/** Fill of a unit whose contacted share the disclosure policy withholds. */
export const WITHHELD_COLOR = '#7f7f7f';

/** Fill colour by the tiles' `contacted_share` (effective figures of today, decided by the
 * server's disclosure policy): grey where the unit has no households, the withheld colour where
 * it has some but the share is left out of the tile. */
export function effectiveColor() {
    const steps = ['step', ['to-number', ['get', 'contacted_share'], -1], WITHHELD_COLOR];
    for (const [lo, color] of EFFECTIVE_CLASSES) steps.push(lo, color);
    return [
        'case',
        ['==', ['to-number', ['get', 'households'], -1], 0], NO_DATA,
        ['has', 'contacted_share'], steps,
        WITHHELD_COLOR,
    ];
}

/** Label of a unit: its name and, under it, `label2` when the viewer set one (the effective
 * mode's contacted share, or "withheld"), else its coverage in whole percent. */
export function unitLabel() {
    return [
        'case',
        ['has', 'label2'],
        ['format', ['get', 'name'], {}, '\n', {}, ['to-string', ['get', 'label2']], {'font-scale': 0.85}],
        ['has', 'coverage_share'],
        ['format', ['get', 'name'], {}, '\n', {}, ['concat', ['to-string', ['round', ['*', 100, ['to-number', ['get', 'coverage_share'], 0]]]], '%'], {'font-scale': 0.85}],
        ['get', 'name'],
    ];
}

/** Kind of a station for its icon: mobile, demonstration or plain. */
export const stationKind = () => ['case', isTrue('mobile'), 'mobile', isTrue('demonstration'), 'demo', 'fixed'];

const ICON_SIZE = {province: 26, city: 23, county: 20, township: 16, village: 13};

function drawIcon(shape, color, size, ratio) {
    const px = Math.round(size * ratio);
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = px;
    const ctx = canvas.getContext('2d');
    const c = px / 2;
    const r = px / 2 - 2 * ratio;
    ctx.beginPath();
    if (shape === 'mobile') {
        ctx.moveTo(c, c - r);
        ctx.lineTo(c + r * 0.95, c + r * 0.8);
        ctx.lineTo(c - r * 0.95, c + r * 0.8);
        ctx.closePath();
    } else if (shape === 'demo') {
        for (let i = 0; i < 10; i++) {
            const a = -Math.PI / 2 + (i * Math.PI) / 5;
            const rr = i % 2 ? r * 0.45 : r;
            ctx[i ? 'lineTo' : 'moveTo'](c + rr * Math.cos(a), c + rr * Math.sin(a));
        }
        ctx.closePath();
    } else if (shape === 'proposed' || shape === 'added') {
        ctx.rect(c - r * 0.8, c - r * 0.8, r * 1.6, r * 1.6);
    } else {
        ctx.arc(c, c, r * 0.8, 0, 2 * Math.PI);
    }
    ctx.fillStyle = color;
    ctx.fill();
    // Demonstration stations: a star in the level's colour with a gold rim.
    ctx.lineWidth = (shape === 'demo' ? 2.2 : 2) * ratio;
    ctx.strokeStyle = shape === 'demo' ? '#ffb300' : '#ffffff';
    ctx.stroke();
    if (shape === 'added') {
        ctx.fillStyle = '#ffffff';
        ctx.fillRect(c - r * 0.5, c - ratio, r, 2 * ratio);
        ctx.fillRect(c - ratio, c - r * 0.5, 2 * ratio, r);
    }
    return ctx.getImageData(0, 0, px, px);
}

/** Adds the icons `station-{level}-{fixed|demo|mobile}`, `proposed` and `added` to the map. */
export function addIcons(map) {
    const ratio = 2;
    for (const level of LEVELS) {
        for (const kind of ['fixed', 'demo', 'mobile']) {
            const img = drawIcon(kind, LEVEL_COLORS[level], ICON_SIZE[level], ratio);
            map.addImage(`station-${level}-${kind}`, img, {pixelRatio: ratio});
        }
    }
    map.addImage('proposed', drawIcon('proposed', PROPOSED_COLOR, 20, ratio), {pixelRatio: ratio});
    map.addImage('added', drawIcon('added', '#2e7d32', 20, ratio), {pixelRatio: ratio});
}

/** A small legend swatch for an icon, as a data URL. */
export function iconDataUrl(kind, level) {
    const color = LEVEL_COLORS[level] || (kind === 'added' ? '#2e7d32' : PROPOSED_COLOR);
    const img = drawIcon(kind, color, 16, 2);
    const canvas = document.createElement('canvas');
    canvas.width = img.width;
    canvas.height = img.height;
    canvas.getContext('2d').putImageData(img, 0, 0);
    return canvas.toDataURL();
}
