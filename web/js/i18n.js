// Every string the viewer shows, in Chinese (default) and English. Names of places, stations and
// people and statistical codes are data: they are shown as written in China, never translated.

export const STRINGS = {
    zh: {
        title: '退役军人服务站覆盖',
        lang_switch: 'English',
        sign_in: '登录',
        sign_out: '退出',
        token: '访问令牌',
        token_hint: '请输入管理员发放的访问令牌',
        token_invalid: '令牌无效或已过期',
        server_error: '服务器错误：{msg}',
        loading: '正在加载…',
        role_leader: '领导',
        role_planner: '规划人员',
        role_grid_worker: '网格员',
        level: '层级',
        level_province: '省',
        level_city: '市',
        level_county: '县',
        level_township: '乡镇',
        level_village: '村',
        whole_area: '全部',
        drill_hint: '点击地图上的区域可逐级下钻',
        drill_up: '返回上级',
        layers: '图层',
        layer_coverage: '覆盖率分级',
        layer_stations: '服务站',
        layer_gaps: '覆盖空白区',
        layer_cells: '户数网格单元',
        layer_grids: '网格',
        layer_households: '户',
        stations_by_level: '按层级显示服务站',
        legend: '图例',
        legend_coverage: '覆盖率（已覆盖退役军人占比）',
        legend_no_data: '无数据',
        withheld_note: '部分数字已隐去：不足规定户数（默认5户）的数字及可由其推算的数字不予显示（隐私保护）。',
        legend_station: '固定服务站',
        legend_demonstration: '示范站',
        legend_mobile: '流动服务站',
        legend_gap: '覆盖空白区',
        legend_cells: '户数单元（户）',
        legend_proposed: '拟建站点',
        legend_added: '新增站点',
        worst_units: '覆盖最差的单位',
        col_name: '名称',
        col_code: '代码',
        col_households: '户数',
        col_veterans: '退役军人',
        col_covered: '已覆盖',
        col_share: '覆盖率',
        col_stations: '站数',
        col_before: '之前',
        col_after: '之后',
        col_change: '变化',
        none: '无',
        yes: '是',
        no: '否',
        unit: '单位',
        households: '户数',
        veterans: '退役军人',
        covered_veterans: '已覆盖退役军人',
        coverage_share: '覆盖率',
        stations: '服务站',
        station: '服务站',
        station_level: '站点层级',
        demonstration: '示范站',
        mobile: '流动站',
        radius: '服务半径',
        gap: '覆盖空白区',
        gap_rank: '排名',
        nearest_station: '最近服务站',
        nearest_mean: '平均到站距离',
        hardship_share: '困难户退役军人覆盖率',
        distance: '距离',
        cell: '户数单元',
        cell_count: '户数',
        grid: '网格',
        grid_worker: '网格员',
        my_grids: '我的网格',
        my_households: '我的户',
        household: '户',
        household_id: '户编号',
        name: '姓名',
        address: '地址',
        difficulty: '困难',
        martyr_family: '烈属',
        covered: '已覆盖',
        not_covered: '未覆盖',
        code: '代码',
        village: '村',
        lonlat: '经纬度',
        count_of: '共 {n} 户',
        plan: '选址规划',
        plan_level: '新站层级',
        plan_k: '新站数量 K',
        plan_radius: '服务半径（米）',
        plan_area: '规划范围',
        run_plan: '运行规划',
        plan_running: '正在规划…',
        plan_result: '拟建 {n} 个站点，覆盖率 {before} → {after}',
        plan_failed: '规划失败：{msg}',
        scenario: '情景分析',
        scenario_hint: '选择“添加服务站”后点击地图放置新站；选择“移除服务站”后点击现有服务站',
        scenario_add: '添加服务站',
        scenario_remove: '移除服务站',
        scenario_off: '浏览',
        scenario_reset: '清除情景',
        scenario_changes: '新增 {added} 个，移除 {removed} 个',
        scenario_result: '总覆盖率 {before} → {after}',
        scenario_failed: '情景计算失败：{msg}',
        change_per_unit: '各单位覆盖变化',
        proposed_site: '拟建站点',
        newly_covered: '新增覆盖退役军人',
        added_station: '新增站点',
        removed: '已移除',
        remove_station: '移除此站',
        total: '合计',
        no_rows: '暂无数据',
        details: '详情',
    },
    en: {
        title: "Veterans' service station coverage",
        lang_switch: '中文',
        sign_in: 'Sign in',
        sign_out: 'Sign out',
        token: 'Access token',
        token_hint: 'Enter the access token your administrator gave you',
        token_invalid: 'The token is invalid or has expired',
        server_error: 'Server error: {msg}',
        loading: 'Loading…',
        role_leader: 'Leader',
        role_planner: 'Planner',
        role_grid_worker: 'Grid worker',
        level: 'Level',
        level_province: 'Province',
        level_city: 'City',
        level_county: 'County',
        level_township: 'Township',
        level_village: 'Village',
        whole_area: 'All',
        drill_hint: 'Click an area on the map to drill down',
        drill_up: 'Up one level',
        layers: 'Layers',
        layer_coverage: 'Coverage',
        layer_stations: 'Stations',
        layer_gaps: 'Gap areas',
        layer_cells: 'Household cells',
        layer_grids: 'Grids',
        layer_households: 'Households',
        stations_by_level: 'Stations by level',
        legend: 'Legend',
        legend_coverage: 'Coverage (share of veterans covered)',
        legend_no_data: 'No data',
        withheld_note: 'Some figures are withheld: figures of fewer than the set number of households (5 by default), and those they could be worked out from, are not shown (privacy).',
        legend_station: 'Station',
        legend_demonstration: 'Demonstration station',
        legend_mobile: 'Mobile station',
        legend_gap: 'Gap area',
        legend_cells: 'Household cells (households)',
        legend_proposed: 'Proposed site',
        legend_added: 'Added station',
        worst_units: 'Worst-covered units',
        col_name: 'Name',
        col_code: 'Code',
        col_households: 'Households',
        col_veterans: 'Veterans',
        col_covered: 'Covered',
        col_share: 'Coverage',
        col_stations: 'Stations',
        col_before: 'Before',
        col_after: 'After',
        col_change: 'Change',
        none: 'None',
        yes: 'Yes',
        no: 'No',
        unit: 'Unit',
        households: 'Households',
        veterans: 'Veterans',
        covered_veterans: 'Covered veterans',
        coverage_share: 'Coverage',
        stations: 'Stations',
        station: 'Station',
        station_level: 'Station level',
        demonstration: 'Demonstration',
        mobile: 'Mobile',
        radius: 'Service radius',
        gap: 'Gap area',
        gap_rank: 'Rank',
        nearest_station: 'Nearest station',
        nearest_mean: 'Mean distance to a station',
        hardship_share: 'Coverage of veterans in hardship',
        distance: 'Distance',
        cell: 'Household cell',
        cell_count: 'Households',
        grid: 'Grid',
        grid_worker: 'Grid worker',
        my_grids: 'My grids',
        my_households: 'My households',
        household: 'Household',
        household_id: 'Household id',
        name: 'Name',
        address: 'Address',
        difficulty: 'Hardship',
        martyr_family: "Martyr's family",
        covered: 'Covered',
        not_covered: 'Not covered',
        code: 'Code',
        village: 'Village',
        lonlat: 'Lon/lat',
        count_of: '{n} households',
        plan: 'Station siting',
        plan_level: 'Level of new stations',
        plan_k: 'Number of new stations K',
        plan_radius: 'Service radius (m)',
        plan_area: 'Area planned',
        run_plan: 'Run plan',
        plan_running: 'Planning…',
        plan_result: '{n} proposed sites, coverage {before} → {after}',
        plan_failed: 'Planning failed: {msg}',
        scenario: 'What-if',
        scenario_hint: 'Choose "Add station" and click the map to place one; choose "Remove station" and click a station',
        scenario_add: 'Add station',
        scenario_remove: 'Remove station',
        scenario_off: 'Browse',
        scenario_reset: 'Clear scenario',
        scenario_changes: '{added} added, {removed} removed',
        scenario_result: 'Overall coverage {before} → {after}',
        scenario_failed: 'Scenario failed: {msg}',
        change_per_unit: 'Coverage change per unit',
        proposed_site: 'Proposed site',
        newly_covered: 'Veterans newly covered',
        added_station: 'Added station',
        removed: 'Removed',
        remove_station: 'Remove this station',
        total: 'Total',
        no_rows: 'Nothing to show',
        details: 'Details',
    },
};

let lang = 'zh';
const listeners = [];

/** The current language, `zh` or `en`. */
export function getLang() {
    return lang;
}

/** Sets the language, remembers it and tells the listeners. */
export function setLang(next) {
    lang = STRINGS[next] ? next : 'zh';
    try {
        localStorage.setItem('gridcover.lang', lang);
    } catch {
        // storage may be off: the switch still works for this page
    }
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    for (const fn of listeners) fn(lang);
}

/** Calls `fn` whenever the language changes. */
export function onLangChange(fn) {
    listeners.push(fn);
}

/** Restores the remembered language (Chinese unless English was chosen). */
export function initLang() {
    let saved = null;
    try {
        saved = localStorage.getItem('gridcover.lang');
    } catch {
        saved = null;
    }
    const fromUrl = new URLSearchParams(location.search).get('lang');
    lang = STRINGS[fromUrl] ? fromUrl : STRINGS[saved] ? saved : 'zh';
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
}

/** The string `key` in the current language, with `{name}` placeholders filled from `vars`. */
export function t(key, vars = {}) {
    const s = STRINGS[lang][key] ?? STRINGS.zh[key];
    if (s === undefined) {
        console.warn(`i18n: no string ${key}`);
        return key;
    }
    return s.replace(/\{(\w+)\}/g, (_, k) => (vars[k] ?? `{${k}}`));
}

/** Fills every `[data-i18n]` element (text) and `[data-i18n-placeholder]` (placeholder) below `root`. */
export function translate(root = document) {
    for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
    for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
}

/** A share 0..1 as a percentage in the current language's style. */
export function pct(x) {
    if (x === null || x === undefined || Number.isNaN(x)) return '–';
    return `${(x * 100).toFixed(1)}%`;
}

/** A number with thousands separators. */
export function num(x) {
    if (x === null || x === undefined) return '–';
    return Number(x).toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-US');
}
