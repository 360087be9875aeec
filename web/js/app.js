// gridcover's web viewer: sign-in, then the view of the token's role (leader, planner, grid worker)
// on a MapLibre map whose only basemap is the admin boundaries served by `gridcover serve`.
import * as maplibregl from '/vendor/maplibre-gl/maplibre-gl.mjs';
import {t, translate, initLang, setLang, getLang, onLangChange, pct, num} from './i18n.js';
import {loadToken, setToken, getToken, getJson, postJson, patchJson, getAllItems, isOwnUrl, ApiError} from './api.js';
import {
    FONT, LOCAL_IDEOGRAPHS, LEVELS, CODE_LEN, COVERAGE_CLASSES, NO_DATA, LEVEL_COLORS, GAP_COLOR, PROPOSED_COLOR,
    EFFECTIVE_CLASSES, WITHHELD_COLOR, effectiveColor,
    baseStyle, coverageColor, unitLabel, stationKind, addIcons, iconDataUrl, isTrue,
} from './style.js';

const $ = sel => document.querySelector(sel);
const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'})[c]);

/** Everything the page knows; the test reads it through `window.gridcover`. */
const state = {
    me: null,
    map: null,
    ready: false,
    level: 'county', // level of the choropleth
    parent: null, // {code, name, level} of the unit drilled into, or null for the whole area
    crumbs: [], // [{code, name, level}] from the top to `parent`
    report: [],
    mode: 'coverage', // map mode of leaders and planners: 'coverage' (覆盖率) or 'effective' (有效覆盖)
    // GET /api/report/effective of the level shown: rows as the server decided them (withheld: null).
    effective: {rows: [], byCode: new Map(), as_of: null, contact_days: null},
    tab: 'side', // narrow screens: 'side' (the list or panel) or 'map'
    toVisit: null, // grid worker: GET /api/me/to-visit
    openHousehold: null, // grid worker: the household whose details are open (record id)
    detail: {}, // grid worker: record id -> {visits, needs}
    form: null, // grid worker: the contact being recorded {kind, date, needs: Set, note}
    layersOn: {coverage: true, stations: true, gaps: true, cells: true, grids: true, households: true},
    stationLevels: new Set(LEVELS),
    tileLayers: {}, // logical name -> {source, sourceLayer}
    households: null, // grid worker: FeatureCollection
    grids: null,
    plan: null, // last plan answer
    scenario: {mode: 'off', added: [], removed: [], result: null},
    popup: null,
    errors: [],
};
window.gridcover = state;

// ---------------------------------------------------------------- start

initLang();
translate();
$('#lang-switch').addEventListener('click', () => setLang(getLang() === 'zh' ? 'en' : 'zh'));
onLangChange(() => {
    translate();
    if (state.me) renderSide();
    renderLegend();
    if (state.popup) state.popup.remove();
});
document.body.dataset.tab = state.tab;
$('#tabs').addEventListener('click', ev => {
    const tab = ev.target.closest('button[data-tab]')?.dataset.tab;
    if (tab) setTab(tab);
});
$('#sign-out').addEventListener('click', () => {
    setToken(null);
    location.reload();
});
$('#sign-in-form').addEventListener('submit', async ev => {
    ev.preventDefault();
    setToken($('#token-input').value);
    await start();
});
start();

async function start() {
    loadToken();
    if (!getToken()) return showSignIn('');
    let me;
    try {
        me = await getJson('/api/me');
    } catch (e) {
        setToken(null);
        return showSignIn(e instanceof ApiError && (e.status === 401 || e.status === 403) ? t('token_invalid') : t('server_error', {msg: e.message}));
    }
    state.me = me;
    $('#sign-in').hidden = true;
    $('#app').hidden = false;
    $('#sign-out').hidden = false;
    $('#who').textContent = `${me.name} · ${t(`role_${me.role}`)}`;
    $('#tabs button[data-tab="side"]').dataset.i18n = me.role === 'grid_worker' ? 'to_visit' : 'tab_side';
    translate($('#tabs'));
    onLangChange(() => {
        $('#who').textContent = `${me.name} · ${t(`role_${me.role}`)}`;
    });
    await initMap();
}

function showSignIn(message) {
    $('#app').hidden = true;
    $('#sign-out').hidden = true;
    $('#sign-in').hidden = false;
    $('#sign-in-error').textContent = message;
    $('#token-input').focus();
}

/** Narrow screens show the side panel or the map (tabs); wide ones both. */
function setTab(tab) {
    state.tab = tab;
    document.body.dataset.tab = tab;
    for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('on', b.dataset.tab === tab);
    if (tab === 'map' && state.map) state.map.resize();
}

/** Whether the map is on screen (wide screens, or the map tab). */
const mapShown = () => !matchMedia('(max-width: 700px)').matches || state.tab === 'map';

const isWorker = () => state.me?.role === 'grid_worker';
const isPlanner = () => state.me?.role === 'planner';

// ---------------------------------------------------------------- map

async function tileSource(name) {
    const tj = await getJson(`/tiles/${name}.json`);
    // Keep the {z}/{x}/{y} template as it is (URL() would percent-encode its braces).
    const tiles = (tj.tiles || []).map(u => (/^https?:\/\//.test(u) ? u : `${location.origin}${u.startsWith('/') ? '' : '/tiles/'}${u.replace(/^\.\//, '')}`));
    const sourceLayer = tj.vector_layers?.[0]?.id ?? name;
    return {
        spec: {type: 'vector', tiles, minzoom: tj.minzoom ?? 0, maxzoom: tj.maxzoom ?? 14, bounds: tj.bounds},
        sourceLayer,
        tilejson: tj,
    };
}

async function initMap() {
    const origin = location.origin;
    const map = new maplibregl.Map({
        container: 'map',
        style: baseStyle(origin),
        center: [104, 36],
        zoom: 5,
        localIdeographFontFamily: LOCAL_IDEOGRAPHS,
        attributionControl: false,
        // Every request to our own server carries the token in a header, never in the URL.
        transformRequest: url => (isOwnUrl(url) && getToken() ? {url, headers: {Authorization: `Bearer ${getToken()}`}} : {url}),
    });
    state.map = map;
    map.addControl(new maplibregl.NavigationControl({showCompass: false}), 'top-right');
    map.addControl(new maplibregl.ScaleControl({unit: 'metric'}), 'bottom-left');
    map.on('error', e => {
        const msg = e?.error?.message || String(e);
        state.errors.push(msg);
        console.error('map error:', msg);
    });
    await new Promise(resolve => map.once('load', resolve));
    addIcons(map);

    // Sources: the admin levels, stations, gaps, grids and households (cells or points) as tiles.
    const names = ['stations', 'gaps', 'grids', 'households', ...LEVELS.map(l => `admin-${l}`)];
    const loaded = await Promise.all(names.map(n => tileSource(n).then(s => [n, s], e => [n, e])));
    for (const [name, s] of loaded) {
        if (s instanceof Error) {
            console.error(`tiles ${name}: ${s.message}`);
            continue;
        }
        map.addSource(name, s.spec);
        state.tileLayers[name] = {source: name, sourceLayer: s.sourceLayer, tilejson: s.tilejson};
    }
    addLayers(map);
    wireClicks(map);

    if (isWorker()) {
        await loadWorkerData();
    } else {
        await fitTo(null);
    }
    renderSide();
    renderLegend();
    if (!isWorker()) await refreshReport();
    state.ready = true;
}

function src(name) {
    const l = state.tileLayers[name];
    return l ? {source: l.source, 'source-layer': l.sourceLayer} : null;
}

function addLayers(map) {
    // Basemap: every level's outline, finer levels only when zoomed in.
    const outline = {province: [0, 2.2, '#555'], city: [0, 1.4, '#777'], county: [6, 1, '#888'], township: [8, 0.6, '#aaa'], village: [10, 0.4, '#bbb']};
    for (const level of LEVELS) {
        const s = src(`admin-${level}`);
        if (!s) continue;
        map.addLayer({id: `base-${level}`, type: 'fill', ...s, paint: {'fill-color': '#ffffff', 'fill-opacity': level === 'province' ? 1 : 0}});
    }
    // Choropleth: one fill per level, only the chosen one visible.
    for (const level of LEVELS) {
        const s = src(`admin-${level}`);
        if (!s) continue;
        map.addLayer({
            id: `coverage-${level}`, type: 'fill', ...s, layout: {visibility: 'none'},
            paint: {'fill-color': coverageColor(), 'fill-opacity': 0.75},
        });
    }
    for (const level of LEVELS) {
        const s = src(`admin-${level}`);
        if (!s) continue;
        const [minzoom, width, color] = outline[level];
        map.addLayer({id: `outline-${level}`, type: 'line', ...s, minzoom, paint: {'line-color': color, 'line-width': width}});
    }
    if (src('households')) {
        const s = src('households');
        if (isWorker()) {
            map.addLayer({id: 'households-pt', type: 'circle', ...s, paint: {
                'circle-radius': ['interpolate', ['linear'], ['zoom'], 8, 2.5, 14, 6],
                'circle-color': ['case', isTrue('covered'), '#2e7d32', '#c62828'],
                'circle-stroke-color': '#fff', 'circle-stroke-width': 1,
            }});
        } else {
            map.addLayer({id: 'cells-fill', type: 'fill', ...s, minzoom: 9, paint: {
                'fill-color': ['interpolate', ['linear'], ['to-number', ['get', 'households'], 0], 5, '#deebf7', 50, '#6baed6', 300, '#08519c'],
                'fill-opacity': 0.55, 'fill-outline-color': '#4a76a8',
            }});
        }
    }
    if (src('grids')) {
        map.addLayer({id: 'grids-line', type: 'line', ...src('grids'), paint: {'line-color': '#00695c', 'line-width': 0.8, 'line-dasharray': [3, 2]}});
        map.addLayer({id: 'grids-fill', type: 'fill', ...src('grids'), paint: {'fill-color': '#00695c', 'fill-opacity': 0}});
    }
    if (src('gaps')) {
        map.addLayer({id: 'gaps-fill', type: 'fill', ...src('gaps'),
            paint: {'fill-color': GAP_COLOR, 'fill-opacity': 0.35}});
        map.addLayer({id: 'gaps-line', type: 'line', ...src('gaps'),
            paint: {'line-color': GAP_COLOR, 'line-width': 2}});
        map.addLayer({id: 'gaps-pt', type: 'circle', ...src('gaps'), filter: ['==', ['geometry-type'], 'Point'],
            paint: {'circle-radius': 6, 'circle-color': GAP_COLOR, 'circle-opacity': 0.6, 'circle-stroke-color': GAP_COLOR, 'circle-stroke-width': 2}});
    }
    if (src('stations')) {
        map.addLayer({
            id: 'stations', type: 'symbol', ...src('stations'), layout: {
                'icon-image': ['concat', 'station-', ['get', 'level'], '-', stationKind()],
                // Township stations from zoom 7, village stations from zoom 9: a whole province stays legible.
                'icon-size': ['step', ['zoom'], ['match', ['get', 'level'], ['township', 'village'], 0, 1], 7,
                    ['match', ['get', 'level'], 'village', 0, 1], 9, 1],
                'icon-allow-overlap': true, 'icon-ignore-placement': true,
                'symbol-sort-key': ['index-of', ['get', 'level'], ['literal', LEVELS.join(',')]],
                'text-field': ['step', ['zoom'], '', 10, ['get', 'name']], 'text-font': FONT, 'text-size': 10,
                'text-offset': [0, 1.1], 'text-anchor': 'top', 'text-optional': true,
            },
            paint: {'text-color': '#333', 'text-halo-color': '#fff', 'text-halo-width': 1},
        });
    }
    // Unit labels of the chosen level (above the stations, so that they are placed first): one point per unit, made from the tiles in view (a label
    // per tile would repeat a unit's name in every tile it spans).
    map.addSource('unit-labels', {type: 'geojson', data: emptyFc()});
    map.addLayer({
        id: 'unit-labels', type: 'symbol', source: 'unit-labels', layout: {
            'text-field': unitLabel(), 'text-font': FONT, 'text-size': 12, 'text-max-width': 8,
        },
        paint: {'text-color': '#222', 'text-halo-color': '#fff', 'text-halo-width': 1.4},
    });
    map.on('idle', updateLabels);
    // New label data does not by itself bring a frame once the map is idle: ask for one.
    map.on('sourcedata', e => {
        if (e.sourceId === 'unit-labels' && e.isSourceLoaded) map.triggerRepaint();
    });
    // Planner: proposed sites and stations added in the scenario (GeoJSON made here).
    if (isPlanner()) {
        map.addSource('proposed', {type: 'geojson', data: emptyFc()});
        map.addSource('scenario', {type: 'geojson', data: emptyFc()});
        map.addSource('proposed-area', {type: 'geojson', data: emptyFc()});
        map.addLayer({id: 'proposed-area', type: 'fill', source: 'proposed-area',
            paint: {'fill-color': PROPOSED_COLOR, 'fill-opacity': 0.12, 'fill-outline-color': PROPOSED_COLOR}});
        map.addLayer({id: 'proposed', type: 'symbol', source: 'proposed', filter: ['==', ['geometry-type'], 'Point'],
            layout: {'icon-image': 'proposed', 'icon-allow-overlap': true}});
        map.addLayer({id: 'scenario', type: 'symbol', source: 'scenario', filter: ['==', ['geometry-type'], 'Point'],
            layout: {'icon-image': 'added', 'icon-allow-overlap': true}});
    }
    // Grid worker: own households from the features API, so they can be listed too.
    if (isWorker()) {
        map.addSource('my-grids', {type: 'geojson', data: emptyFc()});
        map.addLayer({id: 'my-grids-fill', type: 'fill', source: 'my-grids', paint: {'fill-color': '#00695c', 'fill-opacity': 0.08}});
        map.addLayer({id: 'my-grids-line', type: 'line', source: 'my-grids', paint: {'line-color': '#00695c', 'line-width': 2.5}});
        map.addSource('my-households', {type: 'geojson', data: emptyFc()});
        map.addLayer({id: 'my-households', type: 'circle', source: 'my-households', paint: {
            'circle-radius': ['interpolate', ['linear'], ['zoom'], 8, 3, 15, 8],
            'circle-color': ['case', isTrue('covered'), '#2e7d32', '#c62828'],
            'circle-stroke-color': ['case', ['boolean', ['feature-state', 'selected'], false], '#000', '#fff'],
            'circle-stroke-width': ['case', ['boolean', ['feature-state', 'selected'], false], 3, 1],
        }});
        map.addLayer({id: 'my-households-label', type: 'symbol', source: 'my-households', minzoom: 13, layout: {
            'text-field': ['to-string', ['get', 'id']], 'text-font': FONT, 'text-size': 10, 'text-offset': [0, 1], 'text-anchor': 'top',
        }, paint: {'text-color': '#333', 'text-halo-color': '#fff', 'text-halo-width': 1}});
    }
    applyLevel();
}

const emptyFc = () => ({type: 'FeatureCollection', features: []});

let labelSignature = '';
/** Labels the units of the chosen level (the worker: villages) from the tiles loaded. */
function updateLabels() {
    const map = state.map;
    const level = isWorker() ? 'village' : state.level;
    const layer = state.tileLayers[`admin-${level}`];
    if (!layer || !map.getSource('unit-labels')) return;
    const parent = state.parent?.code;
    const units = new Map(); // code -> {props, bbox, pieces}
    for (const f of map.querySourceFeatures(layer.source, {sourceLayer: layer.sourceLayer})) {
        const code = String(f.properties.code);
        if (parent && !code.startsWith(parent)) continue;
        const polys = f.geometry.type === 'Polygon' ? [f.geometry.coordinates] : f.geometry.type === 'MultiPolygon' ? f.geometry.coordinates : [];
        let u = units.get(code);
        if (!u) units.set(code, (u = {props: f.properties, bbox: [Infinity, Infinity, -Infinity, -Infinity], pieces: []}));
        for (const poly of polys) {
            const b = bboxOf({type: 'Polygon', coordinates: poly});
            if (!b) continue;
            u.bbox = [Math.min(u.bbox[0], b[0]), Math.min(u.bbox[1], b[1]), Math.max(u.bbox[2], b[2]), Math.max(u.bbox[3], b[3])];
            u.pieces.push(poly);
        }
    }
    const features = [];
    for (const [code, u] of units) {
        if (!u.pieces.length) continue;
        // The middle of the unit's whole extent when it lies inside, else inside its largest piece.
        let pt = [(u.bbox[0] + u.bbox[2]) / 2, (u.bbox[1] + u.bbox[3]) / 2];
        if (!u.pieces.some(p => inPolygon(pt, p))) {
            const big = u.pieces.reduce((a, b) => (Math.abs(ringArea(b[0])) > Math.abs(ringArea(a[0])) ? b : a));
            pt = interiorPoint(big);
        }
        const props = {...u.props, code};
        if (state.mode === 'effective' && !isWorker()) {
            const r = state.effective.byCode.get(code);
            props.label2 = !r ? '' : r.contacted_share === null ? t('withheld') : `${Math.round(Number(r.contacted_share) * 100)}%`;
        }
        features.push({type: 'Feature', geometry: {type: 'Point', coordinates: pt}, properties: props});
    }
    const sig = features.map(f => `${f.properties.code}@${f.geometry.coordinates.map(c => c.toFixed(3))}:${f.properties.label2 ?? ''}`).sort().join('|');
    if (sig === labelSignature) return;
    labelSignature = sig;
    map.getSource('unit-labels').setData({type: 'FeatureCollection', features});
}

function ringArea(r) {
    let s = 0;
    for (let i = 0, j = r.length - 1; i < r.length; j = i++) s += (r[j][0] - r[i][0]) * (r[j][1] + r[i][1]);
    return s / 2;
}

function inRing([x, y], r) {
    let inside = false;
    for (let i = 0, j = r.length - 1; i < r.length; j = i++) {
        const [xi, yi] = r[i];
        const [xj, yj] = r[j];
        if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
    }
    return inside;
}

const inPolygon = (pt, poly) => inRing(pt, poly[0]) && !poly.slice(1).some(h => inRing(pt, h));

/** A point inside a polygon: the middle of the widest span of the horizontal line through its middle. */
function interiorPoint(poly) {
    const b = bboxOf({type: 'Polygon', coordinates: poly});
    const y = (b[1] + b[3]) / 2;
    const xs = [];
    for (const r of poly) {
        for (let i = 0, j = r.length - 1; i < r.length; j = i++) {
            const [xi, yi] = r[i];
            const [xj, yj] = r[j];
            if (yi > y !== yj > y) xs.push(((xj - xi) * (y - yi)) / (yj - yi) + xi);
        }
    }
    xs.sort((p, q) => p - q);
    let best = [(b[0] + b[2]) / 2, y];
    let width = -1;
    for (let i = 0; i + 1 < xs.length; i += 2) {
        if (xs[i + 1] - xs[i] > width) {
            width = xs[i + 1] - xs[i];
            best = [(xs[i] + xs[i + 1]) / 2, y];
        }
    }
    return best;
}

/** The choropleth's fill: coverage from the tiles, or (effective mode) the contacted share the
 * tiles carry (every unit of the level, as of today; a withheld share has its own colour). A
 * server without a store has no service records: the effective mode then shows no data. */
function applyFill() {
    const id = `coverage-${state.level}`;
    if (!state.map.getLayer(id)) return;
    let color = coverageColor();
    if (state.mode === 'effective') color = state.effective.as_of ? effectiveColor() : NO_DATA;
    state.map.setPaintProperty(id, 'fill-color', color);
}

function setVisible(id, on) {
    if (state.map.getLayer(id)) state.map.setLayoutProperty(id, 'visibility', on ? 'visible' : 'none');
}

/** Shows the chosen level's choropleth and labels, limited to the unit drilled into. */
function applyLevel() {
    const map = state.map;
    const parent = state.parent;
    const within = parent
        ? ['==', ['slice', ['to-string', ['get', 'code']], 0, CODE_LEN[parent.level]], parent.code]
        : true;
    for (const level of LEVELS) {
        const on = level === state.level && !isWorker();
        setVisible(`coverage-${level}`, on && state.layersOn.coverage);
        if (map.getLayer(`coverage-${level}`)) map.setFilter(`coverage-${level}`, within === true ? null : within);
    }
    applyFill();
    labelSignature = '';
    updateLabels();
    setVisible('stations', state.layersOn.stations);
    if (map.getLayer('stations')) {
        const removed = state.scenario.removed.map(s => s.id);
        map.setFilter('stations', ['all',
            ['in', ['get', 'level'], ['literal', [...state.stationLevels]]],
            ['!', ['in', ['to-string', ['get', 'id']], ['literal', removed]]],
        ]);
    }
    for (const id of ['gaps-fill', 'gaps-line', 'gaps-pt']) setVisible(id, state.layersOn.gaps);
    setVisible('cells-fill', state.layersOn.cells);
    setVisible('households-pt', state.layersOn.households && !isWorker());
    for (const id of ['grids-line', 'grids-fill']) setVisible(id, state.layersOn.grids);
}

/** Fits the map to a unit (by code) or, for null, the whole served area. */
async function fitTo(unit) {
    let bbox = null;
    try {
        if (unit) {
            const fc = await getJson(`/api/collections/admin-${unit.level}/items?code=${encodeURIComponent(unit.code)}&limit=10`);
            const f = (fc.features || []).find(x => String(x.properties?.code) === unit.code) || fc.features?.[0];
            if (f) bbox = f.bbox || bboxOf(f.geometry);
        } else {
            // The counties' extent: the area the data covers (the province, or a part of it).
            const c = await getJson('/api/collections/admin-county');
            bbox = c.extent?.spatial?.bbox?.[0] || state.tileLayers['admin-county']?.tilejson?.bounds || null;
        }
    } catch (e) {
        console.warn(`fit: ${e.message}`);
    }
    if (bbox && bbox.every(Number.isFinite)) state.map.fitBounds([[bbox[0], bbox[1]], [bbox[2], bbox[3]]], {padding: 30, duration: 0});
}

function bboxOf(geom) {
    const b = [Infinity, Infinity, -Infinity, -Infinity];
    const walk = c => {
        if (typeof c[0] === 'number') {
            b[0] = Math.min(b[0], c[0]); b[1] = Math.min(b[1], c[1]);
            b[2] = Math.max(b[2], c[0]); b[3] = Math.max(b[3], c[1]);
        } else c.forEach(walk);
    };
    if (geom?.type === 'GeometryCollection') geom.geometries.forEach(g => walk(g.coordinates));
    else if (geom) walk(geom.coordinates);
    return b[0] <= b[2] ? b : null;
}

// ---------------------------------------------------------------- clicks and popups

function wireClicks(map) {
    const clickable = ['scenario', 'proposed', 'my-households', 'households-pt', 'stations', 'gaps-pt', 'gaps-fill',
        'cells-fill', ...LEVELS.map(l => `coverage-${l}`), 'my-grids-fill', 'grids-fill'];
    for (const id of clickable) {
        map.on('mouseenter', id, () => { map.getCanvas().style.cursor = 'pointer'; });
        map.on('mouseleave', id, () => { map.getCanvas().style.cursor = ''; });
    }
    map.on('click', async e => {
        const layers = clickable.filter(id => map.getLayer(id) && map.getLayoutProperty(id, 'visibility') !== 'none');
        const hits = map.queryRenderedFeatures(e.point, {layers});
        // Planner scenario: a click places or removes a station instead of just showing it.
        if (isPlanner() && state.scenario.mode === 'add') {
            addScenarioStation(e.lngLat);
            return;
        }
        if (isPlanner() && state.scenario.mode === 'remove') {
            const st = hits.find(f => f.layer.id === 'stations');
            const added = hits.find(f => f.layer.id === 'scenario');
            if (st) removeScenarioStation(st.properties);
            else if (added) dropAddedStation(added.properties.sid);
            return;
        }
        // What a click is about, most specific first: a point, a gap, a unit (with the cell under
        // it: drills down), a cell, a grid.
        const order = ['scenario', 'proposed', 'my-households', 'households-pt', 'stations', 'gaps-pt', 'gaps-fill',
            ...LEVELS.map(l => `coverage-${l}`), 'cells-fill', 'my-grids-fill', 'grids-fill'];
        const rank = f => order.indexOf(f.layer.id);
        const f = hits.slice().sort((x, y) => rank(x) - rank(y))[0];
        if (!f) return;
        const layer = f.layer.id;
        if (layer.startsWith('coverage-')) {
            const cell = hits.find(h => h.layer.id === 'cells-fill');
            const popup = showPopup(e.lngLat, unitHtml(f.properties) + (cell ? cellHtml(cell.properties) : ''));
            const code = String(f.properties.code);
            if (state.mode === 'effective' && state.effective.as_of && !state.effective.byCode.has(code)) {
                // A unit beyond the report's first 1000 rows: its figures as the server decided
                // them for its feature (the same names, withheld ones null).
                getJson(`/api/collections/${layer.replace('coverage-', 'admin-')}/items/${encodeURIComponent(code)}`).then(item => {
                    if (state.popup === popup && item?.properties) {
                        popup.setHTML(unitHtml(f.properties, item.properties) + (cell ? cellHtml(cell.properties) : ''));
                    }
                }).catch(err => console.error(`unit ${code}: ${err.message}`));
            }
            drillInto({code: String(f.properties.code), name: f.properties.name, level: layer.slice('coverage-'.length)});
        } else if (layer === 'stations') showPopup(e.lngLat, stationHtml(f.properties));
        else if (layer === 'my-households' || layer === 'households-pt') {
            selectHousehold(f.properties.id, false);
            showPopup(e.lngLat, householdHtml(f.properties));
        } else if (layer.startsWith('gaps')) showPopup(e.lngLat, gapHtml(f.properties));
        else if (layer === 'cells-fill') showPopup(e.lngLat, cellHtml(f.properties));
        else if (layer === 'grids-fill' || layer === 'my-grids-fill') showPopup(e.lngLat, gridHtml(f.properties));
        else if (layer === 'proposed') showPopup(e.lngLat, proposedHtml(f.properties));
        else if (layer === 'scenario') showPopup(e.lngLat, `<h4>${t('added_station')}</h4>`);
    });
}

function showPopup(lngLat, html) {
    if (state.popup) state.popup.remove();
    state.popup = new maplibregl.Popup({maxWidth: '320px'}).setLngLat(lngLat).setHTML(html).addTo(state.map);
    return state.popup;
}

const rows = pairs => `<table>${pairs.filter(p => p[1] !== undefined && p[1] !== null && p[1] !== '')
    .map(([k, v]) => `<tr><td>${esc(k)}</td><td>${v}</td></tr>`).join('')}</table>`;
const yesNo = v => (v === true || v === 'true' || v === 1 ? t('yes') : t('no'));
const metres = m => (m === undefined || m === null || m === '' ? undefined : (Number(m) >= 1000 ? `${(Number(m) / 1000).toFixed(1)} km` : `${Math.round(Number(m))} m`));

/** Stations in a unit: the `stations` figure, or the sum of `stations_<level>`. */
function stationsTotal(p) {
    if (p.stations !== undefined && p.stations !== null) return Number(p.stations);
    const parts = LEVELS.map(l => p[`stations_${l}`]).filter(v => v !== undefined && v !== null);
    return parts.length ? parts.reduce((a, b) => a + Number(b), 0) : undefined;
}

function stationsBreakdown(p) {
    const total = stationsTotal(p);
    if (total === undefined) return undefined;
    const by = LEVELS.filter(l => Number(p[`stations_${l}`]) > 0).map(l => `${t(`level_${l}`)} ${num(p[`stations_${l}`])}`);
    return `${num(total)}${by.length ? ` (${esc(by.join(', '))})` : ''}`;
}

/** A unit's popup; `effRow`: its effective figures when they are not in the loaded report. */
function unitHtml(p, effRow) {
    const share = p.coverage_share === undefined || p.coverage_share === null ? undefined : Number(p.coverage_share);
    return `<h4>${esc(p.name)} <span class="code">${esc(p.code)}</span></h4>` + rows([
        [t('households'), num(p.households)],
        [t('veterans'), num(p.veterans)],
        [t('covered_veterans'), num(p.covered_veterans)],
        [t('coverage_share'), pct(share)],
        [t('stations'), stationsBreakdown(p)],
        [t('demonstration'), p.demonstration_stations === undefined ? undefined : num(p.demonstration_stations)],
        [t('mobile'), p.mobile_stations === undefined ? undefined : num(p.mobile_stations)],
        [t('nearest_mean'), metres(p.nearest_mean_m)],
        [t('hardship_share'), p.hardship_coverage_share === undefined || p.hardship_coverage_share === null ? undefined : pct(Number(p.hardship_coverage_share))],
    ]) + withheldNote(p) + effectiveHtml(p.code, effRow);
}

// ---------------------------------------------------------------- effective coverage (有效覆盖)

/** The figures of a row of `/api/report/effective` the viewer shows, in order, with their format. */
const EFFECTIVE_FIGURES = [
    ['contacted_households', 'count'],
    ['contacted_share', 'share'],
    ['overdue_households', 'count'],
    ['hardship_overdue_households', 'count'],
    ['never_contacted_households', 'count'],
    ['open_needs', 'count'],
    ['open_needs_median_days', 'days'],
    ['needs_resolved_30d_share', 'share'],
];

/**
 * One figure of an effective row as shown. `null` is withheld by the disclosure policy — except
 * where the figure has no value at all, which its own row says (a share of no households, a
 * median of no open needs, a share of no needs raised in the window: "–"). Nothing is worked
 * out from other figures.
 */
function effValue(r, key, kind) {
    const v = r[key];
    const none = (key === 'contacted_share' && r.households === 0)
        || (key === 'open_needs_median_days' && r.open_needs === 0)
        || (key === 'needs_resolved_30d_share' && r.needs_in_window === 0);
    if (v === null || v === undefined) return none ? '–' : `<span class="withheld-v">${t('withheld')}</span>`;
    if (kind === 'share') return pct(Number(v));
    if (kind === 'days') return num(Math.round(Number(v) * 10) / 10);
    return num(v);
}

/** The effective figures of unit `code` for a popup: its row of the report of its level, or
 * `row` (the unit's feature, for a unit beyond the report's first rows). */
function effectiveHtml(code, row) {
    const r = row ?? state.effective.byCode.get(String(code));
    if (!r) return '';
    return `<h5>${t('effective_section', {date: esc(state.effective.as_of)})}</h5><table class="eff">${
        EFFECTIVE_FIGURES.map(([k, kind]) => `<tr data-col="${k}"><td>${t(k)}</td><td>${effValue(r, k, kind)}</td></tr>`).join('')}</table>`;
}

/** Says that some figures are withheld by the disclosure policy (groups of too few households). */
const withheldNote = p => (p.withheld === true || p.withheld === 'true' ? `<p class="withheld">${t('withheld_note')}</p>` : '');

function stationHtml(p) {
    const kinds = [isTrueValue(p.demonstration) ? t('demonstration') : null, isTrueValue(p.mobile) ? t('mobile') : null].filter(Boolean);
    return `<h4>${esc(p.name)}</h4>` + rows([
        [t('station_level'), esc(t(`level_${p.level}`))],
        [t('code'), esc(p.code)],
        ['', esc(kinds.join(' · '))],
        [t('radius'), metres(p.radius_m)],
    ]) + (isPlanner() ? `<button type="button" class="act" data-remove-station="${esc(p.id)}">${t('remove_station')}</button>` : '');
}

const isTrueValue = v => v === true || v === 'true' || v === 1;

function householdHtml(p) {
    return `<h4>${t('household')} ${esc(p.id)}</h4>` + rows([
        [t('name'), esc(p.name)],
        [t('address'), esc(p.address)],
        [t('veterans'), num(p.veterans)],
        [t('difficulty'), p.difficulty === undefined ? undefined : yesNo(p.difficulty)],
        [t('martyr_family'), p.martyr_family === undefined ? undefined : yesNo(p.martyr_family)],
        [t('covered'), p.covered === undefined ? undefined : yesNo(p.covered)],
        [t('grid'), esc(p.grid_id)],
        [t('village'), esc(p.village_code ?? p.code)],
        [t('nearest_station'), esc(p.nearest_station ?? p.nearest_station_id)],
        [t('distance'), metres(p.nearest_m ?? p.nearest_station_m)],
    ]) + (isWorker() ? `<button type="button" class="act" data-open-household="${esc(p.id)}">${t('record_visit')}</button>` : '');
}

function gapHtml(p) {
    return `<h4>${t('gap')}${p.rank !== undefined ? ` #${esc(p.rank)}` : ''}</h4>` + rows([
        [t('households'), num(p.households)],
        [t('veterans'), num(p.veterans)],
        [t('code'), esc(p.village_code ?? p.code ?? p.county_code)],
        [t('nearest_station'), esc(p.nearest_station_id ?? p.nearest_station)],
        [t('distance'), metres(p.nearest_station_m ?? p.nearest_m)],
    ]);
}

const cellHtml = p => `<h4>${t('cell')}</h4>` + rows([[t('cell_count'), num(p.households ?? p.count)], [t('veterans'), num(p.veterans)], [t('covered_veterans'), num(p.covered_veterans)]]) + withheldNote(p);
const gridHtml = p => `<h4>${t('grid')} ${esc(p.id)}</h4>` + rows([[t('grid_worker'), esc(p.worker)], [t('code'), esc(p.code)], [t('households'), num(p.households)]]) + withheldNote(p);
const proposedHtml = p => `<h4>${t('proposed_site')} #${esc(p.rank ?? '')} ${esc(p.name ?? '')}</h4>` + rows([
    [t('code'), esc(p.code)],
    [t('newly_covered'), p.newly_covered_veterans !== undefined ? `+${num(p.newly_covered_veterans)}` : undefined],
    [t('lonlat'), `${Number(p.lon).toFixed(5)}, ${Number(p.lat).toFixed(5)}`],
]);

document.addEventListener('click', ev => {
    const hh = ev.target?.dataset?.openHousehold;
    if (hh) {
        if (state.popup) state.popup.remove();
        setTab('side');
        openHousehold(hh);
        return;
    }
    const id = ev.target?.dataset?.removeStation;
    if (id) {
        removeScenarioStation({id});
        if (state.popup) state.popup.remove();
    }
});

// ---------------------------------------------------------------- drill-down and report

function drillInto(unit) {
    const i = LEVELS.indexOf(unit.level);
    if (i < 0 || i === LEVELS.length - 1) return;
    const crumbs = state.crumbs.filter(c => LEVELS.indexOf(c.level) < i);
    crumbs.push(unit);
    state.crumbs = crumbs;
    state.parent = unit;
    state.level = LEVELS[i + 1];
    applyLevel();
    renderSide();
    fitTo(unit);
    refreshReport();
}

function goUp(index) {
    // index: position in crumbs to go back to; -1 for the whole area.
    state.crumbs = state.crumbs.slice(0, index + 1);
    state.parent = state.crumbs[index] || null;
    state.level = state.parent ? LEVELS[LEVELS.indexOf(state.parent.level) + 1] : 'county';
    applyLevel();
    renderSide();
    fitTo(state.parent);
    refreshReport();
}

function chooseLevel(level) {
    state.level = level;
    // A drill-down deeper than the chosen level no longer applies.
    const i = LEVELS.indexOf(level);
    state.crumbs = state.crumbs.filter(c => LEVELS.indexOf(c.level) < i);
    state.parent = state.crumbs[state.crumbs.length - 1] || null;
    applyLevel();
    renderSide();
    refreshReport();
}

async function refreshReport() {
    const q = new URLSearchParams({level: state.level, limit: '15'});
    if (state.parent) q.set('code', state.parent.code);
    await Promise.all([
        getJson(`/api/report?${q}`).then(r => {
            state.report = Array.isArray(r) ? r : r.units || r.rows || r.items || [];
        }, e => {
            console.error(`report: ${e.message}`);
            state.report = [];
        }),
        refreshEffective(),
    ]);
    renderReport();
}

/** Loads the effective figures of the level shown (every unit, up to the server's page limit of
 * 1000: the map joins them by code) and recolours and relabels the map. */
async function refreshEffective() {
    const q = new URLSearchParams({level: state.level, limit: '1000'});
    if (state.parent) q.set('code', state.parent.code);
    const level = state.level;
    try {
        const r = await getJson(`/api/report/effective?${q}`);
        if (level !== state.level) return;
        const rows = r.rows || [];
        state.effective = {rows, byCode: new Map(rows.map(x => [String(x.code), x])), as_of: r.as_of, contact_days: r.contact_days, level};
    } catch (e) {
        // A server without a store has no service records (501): the mode shows no data.
        if (!(e instanceof ApiError && e.status === 501)) console.error(`effective report: ${e.message}`);
        state.effective = {rows: [], byCode: new Map(), as_of: null, contact_days: null, level};
    }
    applyFill();
    labelSignature = '';
    updateLabels();
    renderLegend();
}

function chooseMode(mode) {
    state.mode = mode;
    applyFill();
    labelSignature = '';
    updateLabels();
    renderSide();
    renderLegend();
}

// ---------------------------------------------------------------- side panel

function renderSide() {
    const side = $('#side');
    if (isWorker()) {
        side.innerHTML = workerPanel();
        wireWorkerPanel();
        return;
    }
    side.innerHTML = `
      <h2>${t('map_mode')}</h2>
      <div class="controls"><span class="seg" id="mode-switch">${['coverage', 'effective'].map(m => `<button type="button" data-mode="${m}" class="${state.mode === m ? 'on' : ''}">${t(`mode_${m}`)}</button>`).join('')}</span></div>
      <h2>${t('level')}</h2>
      <div class="controls"><select id="level-select">${LEVELS.map(l => `<option value="${l}" ${l === state.level ? 'selected' : ''}>${t(`level_${l}`)}</option>`).join('')}</select></div>
      <div class="crumbs" id="crumbs"></div>
      <p class="hint">${t('drill_hint')}</p>
      <h2>${t('layers')}</h2>
      <div class="controls">
        ${['coverage', 'stations', 'gaps', 'cells', 'grids'].map(k => `<label><input type="checkbox" data-layer="${k}" ${state.layersOn[k] ? 'checked' : ''}>${t(`layer_${k}`)}</label>`).join('')}
      </div>
      <h2>${t('stations_by_level')}</h2>
      <div class="controls">
        ${LEVELS.map(l => `<label><input type="checkbox" data-station-level="${l}" ${state.stationLevels.has(l) ? 'checked' : ''}><img alt="" src="${iconDataUrl('fixed', l)}" width="14" height="14">${t(`level_${l}`)}</label>`).join('')}
      </div>
      ${isPlanner() ? plannerPanel() : ''}
      <h2 id="report-title">${t(state.mode === 'effective' ? 'worst_effective' : 'worst_units')} · ${t(`level_${state.level}`)}${state.mode === 'effective' && state.effective.as_of ? ` <span class="hint">${t('as_of', {date: esc(state.effective.as_of)})}</span>` : ''}</h2>
      <div id="report"></div>`;
    const crumbs = $('#crumbs');
    const parts = [`<a data-crumb="-1">${t('whole_area')}</a>`];
    state.crumbs.forEach((c, i) => parts.push(`<span class="sep">›</span><a data-crumb="${i}">${esc(c.name)}</a>`));
    crumbs.innerHTML = parts.join('');
    crumbs.addEventListener('click', ev => {
        const i = ev.target.dataset.crumb;
        if (i !== undefined) goUp(Number(i));
    });
    $('#level-select').addEventListener('change', ev => chooseLevel(ev.target.value));
    $('#mode-switch').addEventListener('click', ev => {
        const m = ev.target.closest('button[data-mode]')?.dataset.mode;
        if (m && m !== state.mode) chooseMode(m);
    });
    for (const cb of side.querySelectorAll('[data-layer]')) {
        cb.addEventListener('change', () => { state.layersOn[cb.dataset.layer] = cb.checked; applyLevel(); });
    }
    for (const cb of side.querySelectorAll('[data-station-level]')) {
        cb.addEventListener('change', () => {
            if (cb.checked) state.stationLevels.add(cb.dataset.stationLevel);
            else state.stationLevels.delete(cb.dataset.stationLevel);
            applyLevel();
        });
    }
    if (isPlanner()) wirePlannerPanel();
    renderReport();
}

function renderReport() {
    const el = $('#report');
    if (!el) return;
    const title = $('#report-title');
    if (title) {
        title.innerHTML = `${t(state.mode === 'effective' ? 'worst_effective' : 'worst_units')} · ${t(`level_${state.level}`)}${state.mode === 'effective' && state.effective.as_of ? ` <span class="hint">${t('as_of', {date: esc(state.effective.as_of)})}</span>` : ''}`;
    }
    if (state.mode === 'effective') {
        renderEffectiveReport(el);
        return;
    }
    if (!state.report.length) {
        el.innerHTML = `<p class="hint">${t('no_rows')}</p>`;
        return;
    }
    el.innerHTML = `<table class="units"><thead><tr>
        <th>${t('col_name')}</th><th>${t('col_households')}</th><th>${t('col_veterans')}</th><th>${t('col_covered')}</th><th>${t('col_share')}</th><th>${t('col_stations')}</th>
      </tr></thead><tbody>${state.report.map((u, i) => `<tr data-row="${i}">
        <td>${esc(u.name)}<br><span class="code">${esc(u.code)}</span></td>
        <td>${num(u.households)}</td><td>${num(u.veterans)}</td><td>${num(u.covered_veterans)}</td>
        <td class="${Number(u.coverage_share) < 0.5 ? 'bad' : ''}">${pct(u.coverage_share)}</td>
        <td>${num(stationsTotal(u))}</td></tr>`).join('')}</tbody></table>`;
    el.querySelector('tbody').addEventListener('click', async ev => {
        const tr = ev.target.closest('tr');
        if (!tr) return;
        const u = state.report[Number(tr.dataset.row)];
        await fitTo({code: String(u.code), level: state.level});
        showPopup(state.map.getCenter(), unitHtml(u));
    });
}

/** The worst-units table of the effective mode: the first 15 rows of `/api/report/effective`
 * (least contacted first, as the server orders them; withheld figures shown as withheld). */
function renderEffectiveReport(el) {
    const shown = state.effective.rows.slice(0, 15);
    if (!shown.length) {
        el.innerHTML = `<p class="hint">${t('no_rows')}</p>`;
        return;
    }
    const cols = [['households', 'col_households', 'count'], ['contacted_households', 'col_contacted', 'count'],
        ['contacted_share', 'col_contacted_share', 'share'], ['overdue_households', 'col_overdue', 'count'],
        ['hardship_overdue_households', 'col_hardship_overdue', 'count'], ['never_contacted_households', 'col_never', 'count'],
        ['open_needs', 'col_open_needs', 'count'], ['open_needs_median_days', 'col_median_days', 'days'],
        ['needs_resolved_30d_share', 'col_resolved_30d', 'share']];
    el.innerHTML = `<div class="scroll-x"><table class="units eff"><thead><tr><th>${t('col_name')}</th>${cols.map(c => `<th>${t(c[1])}</th>`).join('')}</tr></thead>
      <tbody>${shown.map((u, i) => `<tr data-row="${i}" data-code="${esc(u.code)}"><td>${esc(u.name)}<br><span class="code">${esc(u.code)}</span></td>${
        cols.map(([k, , kind]) => `<td data-col="${k}" class="${k === 'contacted_share' && u[k] !== null && Number(u[k]) < 0.5 ? 'bad' : ''}">${effValue(u, k, kind)}</td>`).join('')}</tr>`).join('')}</tbody></table></div>`;
    el.querySelector('tbody').addEventListener('click', async ev => {
        const tr = ev.target.closest('tr');
        if (!tr) return;
        const u = shown[Number(tr.dataset.row)];
        await fitTo({code: String(u.code), level: state.level});
        showPopup(state.map.getCenter(), `<h4>${esc(u.name)} <span class="code">${esc(u.code)}</span></h4>${effectiveHtml(u.code)}`);
    });
}

// ---------------------------------------------------------------- planner

function plannerPanel() {
    const p = state.plan;
    const sc = state.scenario;
    return `
      <h2>${t('plan')}</h2>
      <div class="controls">
        <label>${t('plan_level')} <select id="plan-level">${LEVELS.slice(2).map(l => `<option value="${l}" ${l === (state.planLevel || 'village') ? 'selected' : ''}>${t(`level_${l}`)}</option>`).join('')}</select></label>
        <label>${t('plan_k')} <input id="plan-k" type="number" min="1" max="500" value="${state.planK ?? 5}"></label>
        <label>${t('plan_radius')} <input id="plan-radius" type="number" min="100" step="100" value="${state.planRadius ?? 2000}"></label>
        <span class="hint">${t('plan_area')}: ${esc(state.parent ? state.parent.name : t('whole_area'))}</span>
        <button id="plan-run" type="button" class="act">${t('run_plan')}</button>
      </div>
      <p id="plan-msg" class="result">${p ? esc(planSummary(p)) : ''}</p>
      ${p ? deltaTable(p.units || []) : ''}
      <h2>${t('scenario')}</h2>
      <p class="hint">${t('scenario_hint')}</p>
      <div class="controls">
        <span class="seg" id="scenario-mode">
          ${['off', 'add', 'remove'].map(m => `<button type="button" data-mode="${m}" class="${sc.mode === m ? 'on' : ''}">${t(m === 'off' ? 'scenario_off' : `scenario_${m}`)}</button>`).join('')}
        </span>
        <button id="scenario-reset" type="button">${t('scenario_reset')}</button>
      </div>
      <p class="hint">${t('scenario_changes', {added: sc.added.length, removed: sc.removed.length})}</p>
      <p id="scenario-msg" class="result">${sc.result ? esc(scenarioSummary(sc.result)) : ''}</p>
      ${sc.result ? deltaTable(sc.result.units || sc.result.changes || []) : ''}`;
}

function wirePlannerPanel() {
    $('#plan-run').addEventListener('click', runPlan);
    $('#plan-level').addEventListener('change', ev => { state.planLevel = ev.target.value; });
    $('#plan-k').addEventListener('change', ev => { state.planK = Number(ev.target.value); });
    $('#plan-radius').addEventListener('change', ev => { state.planRadius = Number(ev.target.value); });
    $('#scenario-mode').addEventListener('click', ev => {
        const m = ev.target.dataset.mode;
        if (!m) return;
        state.scenario.mode = m;
        state.map.getCanvas().style.cursor = m === 'off' ? '' : 'crosshair';
        renderSide();
    });
    $('#scenario-reset').addEventListener('click', () => {
        state.scenario = {mode: state.scenario.mode, added: [], removed: [], result: null};
        updateScenarioMap();
        renderSide();
    });
}

const share = x => (typeof x === 'object' && x !== null ? x.coverage_share ?? x.share : x);
const ratio = (a, b) => (Number(b) > 0 ? Number(a) / Number(b) : null);

function planSummary(p) {
    return t('plan_result', {n: (p.sites || []).length, before: pct(ratio(p.covered_before, p.veterans)), after: pct(ratio(p.covered_after, p.veterans))});
}

function scenarioSummary(r) {
    const before = r.covered_before !== undefined ? ratio(r.covered_before, r.veterans) : share(r.before);
    const after = r.covered_after !== undefined ? ratio(r.covered_after, r.veterans) : share(r.after);
    return t('scenario_result', {before: pct(before), after: pct(after)});
}

/** Table of the units whose coverage changes: name, before, after, change (biggest gain first). */
function deltaTable(units) {
    const norm = units.map(u => {
        const before = Number(u.share_before ?? share(u.before) ?? ratio(u.covered_before, u.veterans));
        const after = Number(u.share_after ?? share(u.after) ?? ratio(u.covered_after, u.veterans));
        // A plan's unit (covered_before/after) or a scenario's (before/after figures).
        const gain = Number(u.covered_after ?? u.after?.covered_veterans) - Number(u.covered_before ?? u.before?.covered_veterans);
        return {name: u.name, code: u.code, level: u.level, before, after, d: after - before, gain};
    }).filter(u => Number.isFinite(u.d) && (u.d !== 0 || u.gain > 0))
        .sort((a, b) => LEVELS.indexOf(a.level) - LEVELS.indexOf(b.level) || b.d - a.d);
    if (!norm.length) return `<p class="hint">${t('no_rows')}</p>`;
    return `<h3 class="hint">${t('change_per_unit')}</h3><table class="units delta"><thead><tr>
        <th>${t('col_name')}</th><th>${t('col_before')}</th><th>${t('col_after')}</th><th>${t('col_change')}</th></tr></thead>
        <tbody>${norm.slice(0, 40).map(u => `<tr><td>${esc(u.name)}${u.level ? ` · ${t(`level_${u.level}`)}` : ''}<br><span class="code">${esc(u.code)}</span></td>
        <td>${pct(u.before)}</td><td>${pct(u.after)}</td>
        <td class="${u.d > 0 ? 'up' : u.d < 0 ? 'down' : ''}">${u.d > 0 ? '+' : ''}${(u.d * 100).toFixed(1)}</td></tr>`).join('')}</tbody></table>`;
}

async function runPlan() {
    const btn = $('#plan-run');
    btn.disabled = true;
    $('#plan-msg').textContent = t('plan_running');
    // A maximal-covering plan (gridcover's PlanRequest): K new sites of a level within the unit drilled into.
    const body = {problem: 'mclp', level: state.planLevel || 'village', new: state.planK ?? 5, radius_m: state.planRadius ?? 2000};
    if (state.parent) body.within = state.parent.code;
    try {
        const p = await postJson('/api/plan', body);
        state.plan = p;
        state.map.getSource('proposed').setData({type: 'FeatureCollection', features: (p.sites || []).map(siteFeature)});
        state.map.getSource('proposed-area').setData({type: 'FeatureCollection', features: (p.sites || []).map(s => circle(s.lon, s.lat, p.radius_m))});
        renderSide();
    } catch (e) {
        $('#plan-msg').textContent = t('plan_failed', {msg: e.message});
        btn.disabled = false;
    }
}

/** The service area of a site: a 64-gon of `radiusM` ground metres (sphere of mean Earth radius). */
function circle(lon, lat, radiusM) {
    const R = 6371008.8;
    const d = radiusM / R;
    const la = (lat * Math.PI) / 180;
    const lo = (lon * Math.PI) / 180;
    const ring = [];
    for (let i = 0; i <= 64; i++) {
        const b = (2 * Math.PI * i) / 64;
        const la2 = Math.asin(Math.sin(la) * Math.cos(d) + Math.cos(la) * Math.sin(d) * Math.cos(b));
        const lo2 = lo + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(la), Math.cos(d) - Math.sin(la) * Math.sin(la2));
        ring.push([(lo2 * 180) / Math.PI, (la2 * 180) / Math.PI]);
    }
    return {type: 'Feature', geometry: {type: 'Polygon', coordinates: [ring]}, properties: {}};
}

const siteFeature = (s, i) => ({type: 'Feature', geometry: {type: 'Point', coordinates: [s.lon, s.lat]},
    properties: {rank: i + 1, ...s, codes: undefined, code: (s.codes || []).filter(Boolean).pop() ?? s.id}});

function addScenarioStation(lngLat) {
    const sid = `new-${state.scenario.added.length + 1}`;
    state.scenario.added.push({sid, lon: lngLat.lng, lat: lngLat.lat, level: state.planLevel || 'village', radius_m: state.planRadius ?? undefined});
    runScenario();
}

function dropAddedStation(sid) {
    state.scenario.added = state.scenario.added.filter(s => s.sid !== sid);
    runScenario();
}

function removeScenarioStation(p) {
    const id = String(p.id);
    if (!state.scenario.removed.some(s => s.id === id)) state.scenario.removed.push({id, name: p.name});
    runScenario();
}

function updateScenarioMap() {
    const fc = {type: 'FeatureCollection', features: state.scenario.added.map(s => ({
        type: 'Feature', geometry: {type: 'Point', coordinates: [s.lon, s.lat]}, properties: {sid: s.sid, level: s.level},
    }))};
    state.map.getSource('scenario')?.setData(fc);
    applyLevel();
}

async function runScenario() {
    updateScenarioMap();
    const sc = state.scenario;
    if (!sc.added.length && !sc.removed.length) {
        sc.result = null;
        renderSide();
        return;
    }
    const body = {
        add: sc.added.map(s => ({lon: s.lon, lat: s.lat, level: s.level, ...(s.radius_m ? {radius_m: s.radius_m} : {})})),
        remove: sc.removed.map(s => s.id),
        level: state.level,
    };
    if (state.parent) body.code = state.parent.code;
    try {
        sc.result = await postJson('/api/scenario', body);
        renderSide();
    } catch (e) {
        sc.result = null;
        renderSide();
        $('#scenario-msg').textContent = t('scenario_failed', {msg: e.message});
    }
}

// ---------------------------------------------------------------- grid worker

async function loadWorkerData() {
    // Own grids one by one (the grids collection holds every grid); own households: the server
    // gives a grid worker only those of their grids.
    const ids = (state.me.grids || []).map(String);
    const [grids, households] = await Promise.all([
        loadToVisit().then(() => null),
        Promise.all(ids.map(id => getJson(`/api/collections/grids/items/${encodeURIComponent(id)}`).catch(e => {
            console.warn(`grid ${id}: ${e.message}`);
            return null;
        }))).then(fs => ({type: 'FeatureCollection', features: fs.filter(Boolean)})),
        getAllItems('households'),
    ]).then(([, g, h]) => [g, h]);
    households.features.forEach((f, i) => {
        f.properties = {id: f.id, ...f.properties};
        f.id = i; // numeric ids for feature-state; the record's id stays in properties.id
    });
    state.grids = grids;
    state.households = households;
    state.map.getSource('my-grids').setData(grids);
    state.map.getSource('my-households').setData(households);
    const b = [grids, households].flatMap(fc => fc.features).map(f => f.bbox || bboxOf(f.geometry)).filter(Boolean);
    if (b.length) {
        const bb = b.reduce((a, c) => [Math.min(a[0], c[0]), Math.min(a[1], c[1]), Math.max(a[2], c[2]), Math.max(a[3], c[3])]);
        state.map.fitBounds([[bb[0], bb[1]], [bb[2], bb[3]]], {padding: 40, duration: 0, maxZoom: 15});
    } else {
        await fitTo(null);
    }
}

/** Today on the worker's own calendar (the date a contact is recorded under), `YYYY-MM-DD`. */
function localToday() {
    const d = new Date();
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

const KINDS = ['home', 'phone', 'station', 'other'];
const CATEGORIES = ['employment', 'medical', 'housing', 'pension', 'legal', 'hardship', 'other'];
const NEED_STATUSES = ['open', 'in_progress', 'resolved'];

/** Loads the worker's households in the order to visit them (`GET /api/me/to-visit`, as of today). */
async function loadToVisit() {
    try {
        state.toVisit = await getJson(`/api/me/to-visit?${new URLSearchParams({limit: '1000', as_of: localToday()})}`);
        state.toVisitError = null;
    } catch (e) {
        state.toVisit = null;
        state.toVisitError = e.message;
        console.error(`to-visit: ${e.message}`);
    }
}

function workerPanel() {
    const grids = state.grids?.features || [];
    const tv = state.toVisit;
    const list = tv?.rows || [];
    const gridLine = grids.map(g => `<a data-grid="${esc(g.id ?? g.properties.id)}">${esc(g.id ?? g.properties.id)}</a>${g.properties.households !== undefined ? ` (${t('count_of', {n: num(g.properties.households)})})` : ''}`).join(' · ');
    return `
      <p class="hint grids-line">${t('my_grids')}: ${gridLine || t('none')}</p>
      <h2>${t('to_visit')} <span class="hint">${t('count_of', {n: num(list.length)})}${tv?.as_of ? ` · ${t('as_of', {date: esc(tv.as_of)})}` : ''}</span></h2>
      ${tv ? `<p class="hint">${t('to_visit_order', {hd: tv.hardship_days, cd: tv.contact_days})}</p>` : ''}
      ${state.toVisitError ? `<p class="toast err">${esc(t('list_failed', {msg: state.toVisitError}))}</p>` : ''}
      <div id="toast" role="status"></div>
      <ul class="visit-list" id="visit-list">${list.map(visitItem).join('')}</ul>`;
}

/** One household of the to-visit list (its details when it is the open one). */
function visitItem(r) {
    const open = state.openHousehold === r.id;
    const last = r.last_contact
        ? `${t('last_contact')} ${esc(r.last_contact)} ${r.last_contact_kind ? t(`kind_${r.last_contact_kind}`) : ''} · ${t('days_ago', {n: r.days_since_contact})}`
        : t('never_contacted');
    return `<li data-id="${esc(r.id)}" data-tier="${esc(r.tier)}" class="${open ? 'open' : ''}">
      <button type="button" class="head" data-open="${esc(r.id)}" aria-expanded="${open}">
        <div class="row1"><span class="name">${esc(r.name || r.id)}</span>
          <span class="badge tier-${esc(r.tier)}">${t(`tier_${r.tier}`)}</span>
          ${r.hardship ? `<span class="badge flag">${t('difficulty')}</span>` : ''}
          ${r.martyr_family ? `<span class="badge flag">${t('martyr_family')}</span>` : ''}
          ${r.open_needs > 0 ? `<span class="badge needs">${t('open_needs_n', {n: r.open_needs})}</span>` : ''}</div>
        <div class="meta">${esc(r.id)} · ${last}</div>
        ${r.address ? `<div class="meta">${esc(r.address)}</div>` : ''}
      </button>
      ${open ? `<div class="detail" id="detail">${detailHtml(r)}</div>` : ''}
    </li>`;
}

/** The open household: record a contact (kind, date, needs, note, save), its needs and its contacts. */
function detailHtml(r) {
    const f = state.form;
    const d = state.detail[r.id];
    const needs = d?.needs || [];
    const visits = (d?.visits || []).slice().reverse();
    return `
      <div class="visit-form">
        <h4>${t('record_visit')}</h4>
        <div class="kinds">${KINDS.map(k => `<button type="button" data-kind="${k}" class="${f.kind === k ? 'on' : ''}">${t(`kind_${k}`)}</button>`).join('')}</div>
        <div class="line"><label>${t('visit_date')} <input type="date" id="visit-date" value="${esc(f.date)}" max="2200-12-31" min="1900-01-01"></label></div>
        <div class="line hint">${t('needs_raised')}</div>
        <div class="chips">${CATEGORIES.map(c => `<button type="button" data-cat="${c}" class="${f.needs.has(c) ? 'on' : ''}">${t(`need_${c}`)}</button>`).join('')}</div>
        <div class="line"><input class="note" id="visit-note" maxlength="4000" value="${esc(f.note)}" placeholder="${esc(t('visit_note'))}"></div>
        <button type="button" class="act save" id="visit-save">${t('save')}</button>
      </div>
      <h4>${t('needs_title')}</h4>
      ${!d ? `<p class="hint">${t('loading')}</p>` : needs.length ? needs.map(n => `<div class="need-row" data-need="${n.id}">
          <span>${t(`need_${n.category}`)}</span><span class="hint">${esc(n.opened)}</span><span>${esc(n.note)}</span>
          <select data-need-status="${n.id}" data-version="${n.version}">${NEED_STATUSES.map(st => `<option value="${st}" ${st === n.status ? 'selected' : ''}>${t(`status_${st}`)}</option>`).join('')}</select>
        </div>`).join('') : `<p class="hint">${t('no_needs')}</p>`}
      <h4>${t('history')}</h4>
      ${!d ? `<p class="hint">${t('loading')}</p>` : visits.length ? `<ul class="hist" id="history">${visits.map(v => `<li data-visit="${v.id}" data-date="${esc(v.date)}" data-kind="${esc(v.kind)}">
          <b>${esc(v.date)}</b> ${t(`kind_${v.kind}`)}${v.note ? ` · ${esc(v.note)}` : ''}${(v.needs || []).length ? ` · ${t('needs_title')} ${v.needs.length}` : ''} <span class="hint">${esc(v.user)}</span></li>`).join('')}</ul>`
        : `<p class="hint">${t('no_visits')}</p>`}`;
}

function wireWorkerPanel() {
    $('#visit-list')?.addEventListener('click', onVisitListClick);
    $('#visit-list')?.addEventListener('change', onVisitListChange);
    $('#visit-list')?.addEventListener('input', ev => {
        if (!state.form) return;
        if (ev.target.id === 'visit-note') state.form.note = ev.target.value;
        if (ev.target.id === 'visit-date') state.form.date = ev.target.value;
    });
    for (const a of document.querySelectorAll('a[data-grid]')) {
        a.addEventListener('click', () => {
            const g = state.grids.features.find(f => String(f.id ?? f.properties.id) === a.dataset.grid);
            const b = g && (g.bbox || bboxOf(g.geometry));
            if (b) {
                setTab('map');
                state.map.fitBounds([[b[0], b[1]], [b[2], b[3]]], {padding: 40});
            }
        });
    }
}

function toast(msg, err = false) {
    const el = $('#toast');
    if (!el) return;
    el.className = err ? 'toast err' : 'toast';
    el.textContent = msg;
}

async function onVisitListClick(ev) {
    const head = ev.target.closest('button[data-open]');
    if (head) {
        const id = head.dataset.open;
        await openHousehold(state.openHousehold === id ? null : id);
        return;
    }
    const kind = ev.target.closest('button[data-kind]');
    if (kind && state.form) {
        state.form.kind = kind.dataset.kind;
        // A kind chosen: the date is today unless the worker changed it.
        if (!state.form.date) state.form.date = localToday();
        for (const b of document.querySelectorAll('#detail button[data-kind]')) b.classList.toggle('on', b.dataset.kind === state.form.kind);
        $('#visit-date').value = state.form.date;
        return;
    }
    const cat = ev.target.closest('button[data-cat]');
    if (cat && state.form) {
        const c = cat.dataset.cat;
        if (state.form.needs.has(c)) state.form.needs.delete(c);
        else state.form.needs.add(c);
        cat.classList.toggle('on', state.form.needs.has(c));
        return;
    }
    if (ev.target.closest('#visit-save')) await saveVisit();
}

async function onVisitListChange(ev) {
    const sel = ev.target.closest('select[data-need-status]');
    if (!sel) return;
    const id = state.openHousehold;
    try {
        await patchJson(`/api/needs/${encodeURIComponent(sel.dataset.needStatus)}`, {status: sel.value, date: localToday()}, sel.dataset.version);
        await Promise.all([loadDetail(id), loadToVisit()]);
        renderSide();
    } catch (e) {
        toast(t('save_failed', {msg: e.message}), true);
    }
}

/** Opens a household of the list (null: closes it): its form, needs and contacts; on the map too. */
async function openHousehold(id) {
    state.openHousehold = id;
    state.form = id ? {kind: null, date: localToday(), needs: new Set(), note: ''} : null;
    renderSide();
    if (!id) return;
    $(`#visit-list li[data-id="${CSS.escape(id)}"]`)?.scrollIntoView({block: 'nearest'});
    if (mapShown()) selectHousehold(id, true);
    await loadDetail(id);
    if (state.openHousehold === id) {
        const el = $('#detail');
        const row = state.toVisit?.rows.find(r => r.id === id);
        if (el && row) el.innerHTML = detailHtml(row);
    }
}

/** The contacts and needs of household `id` (audited reads of its grid worker). */
async function loadDetail(id) {
    const enc = encodeURIComponent(id);
    try {
        const [v, n] = await Promise.all([getJson(`/api/households/${enc}/visits`), getJson(`/api/households/${enc}/needs`)]);
        state.detail[id] = {visits: v.visits || [], needs: n.needs || []};
    } catch (e) {
        toast(t('server_error', {msg: e.message}), true);
    }
}

/** Saves the contact being recorded (POST /api/households/{id}/visits), then reloads the list. */
async function saveVisit() {
    const id = state.openHousehold;
    const f = state.form;
    if (!id || !f) return;
    if (!f.kind) {
        toast(t('choose_kind'), true);
        return;
    }
    const btn = $('#visit-save');
    btn.disabled = true;
    btn.textContent = t('saving');
    const body = {date: f.date || localToday(), kind: f.kind, note: f.note, needs: [...f.needs].map(category => ({category, note: ''}))};
    try {
        await postJson(`/api/households/${encodeURIComponent(id)}/visits`, body);
    } catch (e) {
        btn.disabled = false;
        btn.textContent = t('save');
        toast(t('save_failed', {msg: e.message}), true);
        return;
    }
    const row = state.toVisit?.rows.find(r => r.id === id);
    delete state.detail[id];
    state.openHousehold = null;
    state.form = null;
    await loadToVisit();
    renderSide();
    toast(t('saved', {name: row?.name || id, date: body.date, kind: t(`kind_${body.kind}`)}));
    state.lastSaved = {id, ...body};
}

let selected = null;
/** Highlights a household (by list index, or by record id from a map click) and, from the list, flies to it. */
function selectHousehold(key, fly) {
    const feats = state.households?.features || [];
    const idx = typeof key === 'number' ? key : feats.findIndex(f => String(f.properties.id) === String(key));
    const f = feats[idx];
    if (!f) return;
    if (selected !== null) state.map.setFeatureState({source: 'my-households', id: selected}, {selected: false});
    selected = idx;
    state.map.setFeatureState({source: 'my-households', id: idx}, {selected: true});
    if (fly) {
        const [lon, lat] = f.geometry.coordinates;
        state.map.jumpTo({center: [lon, lat], zoom: Math.max(state.map.getZoom(), 14)});
        showPopup({lng: lon, lat}, householdHtml(f.properties));
    }
}

// ---------------------------------------------------------------- legend

function renderLegend() {
    const el = $('#legend');
    if (!state.me) return;
    const parts = [];
    if (!isWorker()) {
        const eff = state.mode === 'effective';
        const classes = eff ? EFFECTIVE_CLASSES : COVERAGE_CLASSES;
        parts.push(`<h3 id="legend-title">${eff ? t('legend_effective', {days: state.effective.contact_days ?? 90}) : t('legend_coverage')}</h3>`);
        classes.forEach(([lo, color], i) => {
            const hi = classes[i + 1]?.[0];
            parts.push(`<div class="row"><span class="sw" style="background:${color}"></span>${hi === undefined ? `≥ ${pct(lo)}` : `${pct(lo)} – ${pct(hi)}`}</div>`);
        });
        if (eff) parts.push(`<div class="row" data-legend="withheld"><span class="sw" style="background:${WITHHELD_COLOR}"></span>${t('legend_withheld')}</div>`);
        parts.push(`<div class="row"><span class="sw" style="background:${NO_DATA}"></span>${t('legend_no_data')}</div>`);
    } else {
        parts.push(`<h3>${t('my_households')}</h3>`);
        parts.push(`<div class="row"><span class="sw" style="background:#2e7d32;border-radius:50%"></span>${t('covered')}</div>`);
        parts.push(`<div class="row"><span class="sw" style="background:#c62828;border-radius:50%"></span>${t('not_covered')}</div>`);
    }
    parts.push(`<h3>${t('stations')}</h3>`);
    parts.push(`<div class="row"><img alt="" src="${iconDataUrl('fixed', 'county')}">${t('legend_station')}</div>`);
    parts.push(`<div class="row"><img alt="" src="${iconDataUrl('demo', 'county')}">${t('legend_demonstration')}</div>`);
    parts.push(`<div class="row"><img alt="" src="${iconDataUrl('mobile', 'village')}">${t('legend_mobile')}</div>`);
    parts.push(`<div class="row">${LEVELS.map(l => `<span><img alt="" src="${iconDataUrl('fixed', l)}">${t(`level_${l}`)}</span>`).join('')}</div>`);
    parts.push(`<div class="row"><span class="sw" style="background:${GAP_COLOR};opacity:.6"></span>${t('legend_gap')}</div>`);
    if (!isWorker()) parts.push(`<div class="row"><span class="sw" style="background:#6baed6"></span>${t('legend_cells')}</div>`);
    if (isPlanner()) {
        parts.push(`<div class="row"><img alt="" src="${iconDataUrl('proposed')}">${t('legend_proposed')}</div>`);
        parts.push(`<div class="row"><img alt="" src="${iconDataUrl('added')}">${t('legend_added')}</div>`);
    }
    el.innerHTML = parts.join('');
}
