// The viewer's only way to the server: every data request carries `Authorization: Bearer TOKEN`.
// The token lives in this page and in sessionStorage; it never goes into a URL.

const KEY = 'gridcover.token';

let token = null;

/** Takes a token from `#token=…` (then removes it from the address bar) or from sessionStorage. */
export function loadToken() {
    const hash = new URLSearchParams(location.hash.replace(/^#/, ''));
    const fromHash = hash.get('token');
    if (fromHash) {
        hash.delete('token');
        const rest = hash.toString();
        history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
        setToken(fromHash);
        return token;
    }
    try {
        token = sessionStorage.getItem(KEY);
    } catch {
        token = null;
    }
    return token;
}

/** Keeps `t` for this tab (null forgets it). */
export function setToken(t) {
    token = t ? t.trim() : null;
    try {
        if (token) sessionStorage.setItem(KEY, token);
        else sessionStorage.removeItem(KEY);
    } catch {
        // storage off: the token stays in this page only
    }
}

/** The token in use, or null. */
export function getToken() {
    return token;
}

/** Thrown for any answer other than 2xx; `status` is the HTTP status (0: no answer). */
export class ApiError extends Error {
    constructor(status, message) {
        super(message);
        this.status = status;
    }
}

/** The headers a request to our server needs. */
export function authHeaders() {
    return token ? {Authorization: `Bearer ${token}`} : {};
}

/** Whether `url` points at this server (the token is never sent anywhere else). */
export function isOwnUrl(url) {
    try {
        return new URL(url, location.href).origin === location.origin;
    } catch {
        return false;
    }
}

async function request(method, path, body, extra = {}) {
    const headers = {...authHeaders(), Accept: 'application/json, application/geo+json', ...extra};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
        res = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
    } catch (e) {
        throw new ApiError(0, String(e));
    }
    const text = await res.text();
    let data = null;
    try {
        data = text ? JSON.parse(text) : null;
    } catch {
        data = null;
    }
    if (!res.ok) {
        const msg = (data && (data.description || data.message || data.error || data.title)) || text || res.statusText;
        throw new ApiError(res.status, `${res.status} ${msg}`);
    }
    return data;
}

/** GET a JSON document. */
export const getJson = path => request('GET', path);

/** POST a JSON body, returns the JSON answer. */
export const postJson = (path, body) => request('POST', path, body);

/** PATCH a JSON body (`ifMatch`: the version read, sent as `If-Match`), returns the JSON answer. */
export const patchJson = (path, body, ifMatch) => request('PATCH', path, body, ifMatch === undefined ? {} : {'If-Match': `"${ifMatch}"`});

/** Every feature of an OGC API Features collection's items, following `next` links (at most `max`). */
export async function getAllItems(collection, params = {}, max = 20000) {
    const q = new URLSearchParams({limit: '1000', ...params});
    let url = `/api/collections/${collection}/items?${q}`;
    const features = [];
    while (url && features.length < max) {
        const page = await getJson(url);
        features.push(...(page.features || []));
        const next = (page.links || []).find(l => l.rel === 'next');
        url = next && (page.features || []).length > 0 ? next.href : null;
    }
    return {type: 'FeatureCollection', features};
}
