//! Synthetic Chinese names, station names and addresses.

use rand::Rng;

use crate::model::Level;

/// Common surnames, roughly in order of frequency (马 is moved up: it is common in Gansu).
const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "马", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高", "林", "何", "郭",
    "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾", "肖", "田", "董", "袁", "潘", "于",
    "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁", "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆",
    "汪", "范", "金", "石", "廖", "贾", "夏", "韦", "付", "方", "白", "邹", "孟", "熊", "秦", "邱", "江", "尹", "薛",
    "闫", "段", "雷", "侯", "龙", "史", "陶", "黎", "贺", "顾", "毛", "郝", "龚", "邵", "万", "钱", "严", "覃", "武",
    "戴", "莫", "孔", "向", "汤", "安", "牛", "包", "祁", "鲁", "达",
];

/// Characters used in given names.
const GIVEN: &[&str] = &[
    "伟", "强", "军", "勇", "杰", "涛", "明", "斌", "磊", "刚", "平", "辉", "鹏", "华", "飞", "建", "国", "峰", "林",
    "兵", "海", "东", "波", "文", "成", "龙", "志", "忠", "德", "福", "生", "荣", "祥", "春", "红", "英", "芳", "霞",
    "兰", "玲", "娟", "燕", "秀", "梅", "丽", "琴", "云", "宏", "新", "利", "庆", "亮", "学", "永", "贵", "全", "有",
    "宝", "胜", "武", "卫", "民", "进", "安", "瑞", "天", "金", "万", "世", "正", "仁", "义",
];

/// A synthetic personal name: a surname (more frequent ones more likely) and one or two
/// given-name characters.
pub(crate) fn person<R: Rng>(rng: &mut R) -> String {
    // Square of a uniform favours the head of the list, as real surname frequencies do.
    let u: f64 = rng.random();
    let si = ((u * u) * SURNAMES.len() as f64) as usize;
    let mut s = String::with_capacity(9);
    s.push_str(SURNAMES[si.min(SURNAMES.len() - 1)]);
    s.push_str(GIVEN[rng.random_range(0..GIVEN.len())]);
    if rng.random_bool(0.7) {
        s.push_str(GIVEN[rng.random_range(0..GIVEN.len())]);
    }
    s
}

/// The everyday short name of a unit: `XX村民委员会`/`XX村委会` → `XX村`,
/// `XX社区居民委员会`/`XX社区居委会` → `XX社区`, `XX居委会` → `XX社区`; others unchanged.
pub(crate) fn short(name: &str) -> String {
    for suffix in ["村民委员会", "村委会"] {
        if let Some(stem) = name.strip_suffix(suffix) {
            return if stem.ends_with('村') { stem.to_string() } else { format!("{stem}村") };
        }
    }
    for suffix in ["居民委员会", "居委会"] {
        if let Some(stem) = name.strip_suffix(suffix) {
            return if stem.ends_with("社区") || stem.is_empty() {
                stem.to_string()
            } else {
                format!("{stem}社区")
            };
        }
    }
    name.to_string()
}

/// True for an urban village-level unit (a community: `社区`, `居委会`, `居民委员会`, `生活区`).
pub(crate) fn is_urban_village(name: &str) -> bool {
    ["社区", "居委会", "居民委员会", "生活区"].iter().any(|s| name.ends_with(s))
}

/// True for an urban township-level unit (a sub-district, `街道`).
pub(crate) fn is_urban_township(name: &str) -> bool {
    name.ends_with("街道")
}

/// The station's name: `XX村退役军人服务站`, `XX镇退役军人服务站`, `XX县退役军人服务中心`,
/// `XX村退役军人马背流动服务站` for a mobile one.
pub(crate) fn station(level: Level, unit_name: &str, mobile: bool) -> String {
    let n = short(unit_name);
    match (level, mobile) {
        (_, true) => format!("{n}退役军人马背流动服务站"),
        (Level::Province | Level::City | Level::County, false) => format!("{n}退役军人服务中心"),
        (Level::Township | Level::Village, false) => format!("{n}退役军人服务站"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn short_names() {
        assert_eq!(short("东岗村民委员会"), "东岗村");
        assert_eq!(short("李家村村民委员会"), "李家村");
        assert_eq!(short("雁南社区居民委员会"), "雁南社区");
        assert_eq!(short("团结社区居委会"), "团结社区");
        assert_eq!(short("城关镇"), "城关镇");
        assert!(is_urban_village("雁南社区居民委员会"));
        assert!(!is_urban_village("东岗村民委员会"));
        assert_eq!(station(Level::Village, "东岗村民委员会", false), "东岗村退役军人服务站");
        assert_eq!(station(Level::County, "榆中县", false), "榆中县退役军人服务中心");
    }

    #[test]
    fn person_names_are_two_or_three_characters() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..1000 {
            let n = person(&mut rng).chars().count();
            assert!((2..=3).contains(&n));
        }
    }
}
