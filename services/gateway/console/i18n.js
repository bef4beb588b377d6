// i18n.js: the console's words in Simplified Chinese (the default) and
// English, and readable labels for every enum value the desk sends. The
// choice persists in localStorage. A key missing from a dictionary shows the
// key itself and is recorded in window.__i18nMissing (the browser tests
// assert it stays empty).

import { UI } from './strings.js';

const LANG_KEY = 'carbondesk.lang';
let current = (() => {
  try {
    const v = localStorage.getItem(LANG_KEY);
    return v === 'en' ? 'en' : 'zh';
  } catch {
    return 'zh';
  }
})();
const listeners = new Set();
window.__i18nMissing = window.__i18nMissing || [];

// lang is 'zh' or 'en'.
export function lang() {
  return current;
}

export function setLang(l) {
  current = l === 'en' ? 'en' : 'zh';
  try {
    localStorage.setItem(LANG_KEY, current);
  } catch {
    // Private mode: the choice lasts for this page only.
  }
  document.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en';
  for (const fn of listeners) fn(current);
}

export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function missing(key) {
  if (!window.__i18nMissing.includes(key)) window.__i18nMissing.push(key);
}

// t looks a key up in the current language and fills {name} placeholders.
// fallback, when given, is returned (without recording a miss) for keys
// that are optional by design.
export function t(key, vars, fallback) {
  let s = UI[current][key];
  if (s === undefined) {
    if (fallback !== undefined) return fallback;
    missing(`${current}:${key}`);
    s = key;
  }
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] !== undefined ? String(vars[k]) : m));
  return s;
}

// Enums: the proto prefix of each, its values in proto order, and labels.
const ENUMS = {
  InstitutionKind: {
    prefix: 'INSTITUTION_KIND_',
    values: ['BANK', 'SECURITIES', 'INSURANCE', 'FUTURES', 'FUND_MANAGER', 'TRUST', 'CARBON_ASSET_MANAGER', 'VERIFIER', 'CONSULTANCY', 'EXCHANGE', 'OTHER'],
    zh: ['银行', '证券公司', '保险公司', '期货公司', '基金管理人', '信托公司', '碳资产管理公司', '第三方核查机构', '咨询机构', '交易所', '其他'],
    en: ['Bank', 'Securities firm', 'Insurer', 'Futures firm', 'Fund manager', 'Trust company', 'Carbon-asset manager', 'Verifier', 'Consultancy', 'Exchange', 'Other'],
  },
  Tier: {
    prefix: 'TIER_',
    values: ['LEGAL_ENTITY', 'REGIONAL_HQ', 'BRANCH'],
    zh: ['法人机构', '区域总部', '分支机构'],
    en: ['Legal entity', 'Regional HQ', 'Branch'],
  },
  Zone: {
    prefix: 'ZONE_',
    values: ['FINANCE_AXIS', 'RIVERSIDE_BELT', 'FINANCE_PARK', 'OTHER_WUCHANG', 'OUTSIDE_DISTRICT'],
    zh: ['中南路中北路金融主轴', '滨江金融服务带', '金融特色园区', '武昌区其他区域', '区外'],
    en: ['Finance axis (Zhongnan–Zhongbei Rd)', 'Riverside finance belt', 'Finance parks', 'Elsewhere in Wuchang', 'Outside the district'],
  },
  InstitutionState: {
    prefix: 'INSTITUTION_STATE_',
    values: ['PENDING', 'ACTIVE', 'REJECTED', 'SUSPENDED'],
    zh: ['待审核', '已入驻', '已驳回', '已暂停'],
    en: ['Pending review', 'Active', 'Rejected', 'Suspended'],
  },
  ReviewAction: {
    prefix: 'REVIEW_ACTION_',
    values: ['APPROVE', 'REJECT', 'SUSPEND', 'REINSTATE'],
    zh: ['批准入驻', '驳回', '暂停', '恢复'],
    en: ['Approved', 'Rejected', 'Suspended', 'Reinstated'],
  },
  ProductCategory: {
    prefix: 'PRODUCT_CATEGORY_',
    values: ['CARBON_BOND', 'CARBON_PLEDGE', 'CARBON_REPO', 'CARBON_CUSTODY', 'CARBON_FORWARD', 'CARBON_FUTURE', 'CARBON_OPTION', 'CARBON_SWAP', 'CARBON_LENDING', 'CARBON_INDEX', 'CARBON_INSURANCE', 'CARBON_FUND', 'VERIFICATION', 'CONSULTING', 'CARBON_LINKED_LOAN', 'ALLOWANCE_TRADE_AGENCY'],
    zh: ['碳债券', '碳资产抵质押融资', '碳资产回购', '碳资产托管', '碳远期', '碳期货', '碳期权', '碳掉期', '碳借贷', '碳指数', '碳保险', '碳基金', '碳核算与核查', '碳咨询', '碳挂钩贷款', '配额交易代理'],
    en: ['Carbon bond', 'Carbon-asset pledge financing', 'Carbon-asset repo', 'Carbon-asset custody', 'Carbon forward', 'Carbon future', 'Carbon option', 'Carbon swap', 'Carbon lending', 'Carbon index', 'Carbon insurance', 'Carbon fund', 'Verification (MRV)', 'Consulting', 'Carbon-linked loan', 'Allowance trading agency'],
  },
  DemandKind: {
    prefix: 'DEMAND_KIND_',
    values: ['FINANCING', 'HEDGING', 'SELL_ALLOWANCE', 'BUY_ALLOWANCE', 'CCER_DEVELOPMENT', 'CUSTODY', 'INSURANCE', 'VERIFICATION', 'CONSULTING'],
    zh: ['融资', '套期保值', '出售配额', '购买配额', 'CCER 项目开发', '碳资产托管', '碳保险', '核算与核查', '咨询'],
    en: ['Financing', 'Hedging', 'Sell allowances', 'Buy allowances', 'CCER development', 'Custody', 'Insurance', 'Verification', 'Consulting'],
  },
  Sector: {
    prefix: 'SECTOR_',
    values: ['POWER', 'STEEL', 'CEMENT', 'ALUMINIUM', 'PETROCHEMICAL', 'CHEMICAL', 'PAPER', 'AVIATION', 'OTHER'],
    zh: ['发电', '钢铁', '建材（水泥）', '有色（电解铝）', '石化', '化工', '造纸', '民航', '其他'],
    en: ['Power', 'Steel', 'Cement', 'Aluminium', 'Petrochemical', 'Chemical', 'Paper', 'Aviation', 'Other'],
  },
  ProductState: {
    prefix: 'PRODUCT_STATE_',
    values: ['DRAFT', 'PUBLISHED', 'PAUSED', 'RETIRED'],
    zh: ['草稿', '已发布', '已暂停', '已下架'],
    en: ['Draft', 'Published', 'Paused', 'Retired'],
  },
  CarbonAsset: {
    prefix: 'CARBON_ASSET_',
    values: ['CEA', 'CCER'],
    zh: ['全国碳排放配额（CEA）', '国家核证自愿减排量（CCER）'],
    en: ['National allowances (CEA)', 'Certified reductions (CCER)'],
  },
  DemandState: {
    prefix: 'DEMAND_STATE_',
    values: ['OPEN', 'MATCHED', 'FULFILLED', 'WITHDRAWN', 'EXPIRED'],
    zh: ['对接中', '已确认机构', '已成交', '已撤回', '已过期'],
    en: ['Open', 'Matched', 'Fulfilled', 'Withdrawn', 'Expired'],
  },
  MatchState: {
    prefix: 'MATCH_STATE_',
    values: ['PROPOSED', 'ACCEPTED', 'DECLINED', 'EXPIRED', 'WITHDRAWN', 'CLOSED', 'CONFIRMED', 'COMPLETED', 'FAILED'],
    zh: ['已推荐', '机构已接单', '机构已谢绝', '已超时', '已撤回', '已关闭', '企业已确认', '已成交', '未成交'],
    en: ['Proposed', 'Accepted', 'Declined', 'Expired', 'Withdrawn', 'Closed', 'Confirmed', 'Completed', 'Failed'],
  },
  FailureReason: {
    prefix: 'FAILURE_REASON_',
    values: ['CREDIT', 'COLLATERAL', 'PRICE', 'ENTERPRISE_WITHDREW', 'OTHER'],
    zh: ['信用原因', '押品不足', '价格未谈拢', '企业撤回', '其他'],
    en: ['Credit', 'Collateral', 'Price', 'Enterprise withdrew', 'Other'],
  },
  EventKind: {
    prefix: 'EVENT_KIND_',
    values: ['TRAINING', 'SALON', 'FORUM', 'CERTIFICATION_EXAM', 'ROADSHOW', 'MATCHMAKING_FAIR', 'POLICY_BRIEFING'],
    zh: ['培训', '沙龙', '论坛', '职业技能认证考试', '产品路演', '银企对接会', '政策宣讲'],
    en: ['Training', 'Salon', 'Forum', 'Certification exam', 'Product roadshow', 'Matchmaking fair', 'Policy briefing'],
  },
  JobType: {
    prefix: 'JOB_TYPE_',
    values: ['MONITORING', 'ACCOUNTING', 'VERIFICATION', 'TRADING', 'CONSULTING', 'CIVIL_AVIATION'],
    zh: ['碳排放监测', '碳排放核算', '碳排放核查', '碳排放交易', '碳排放咨询', '民航碳排放管理'],
    en: ['Monitoring', 'Accounting', 'Verification', 'Trading', 'Consulting', 'Civil-aviation carbon management'],
  },
  EventState: {
    prefix: 'EVENT_STATE_',
    values: ['DRAFT', 'PUBLISHED', 'CLOSED', 'COMPLETED', 'CANCELLED'],
    zh: ['草稿', '报名中', '报名截止', '已举办', '已取消'],
    en: ['Draft', 'Open for registration', 'Registration closed', 'Held', 'Cancelled'],
  },
  RegistrationState: {
    prefix: 'REGISTRATION_STATE_',
    values: ['CONFIRMED', 'WAITLISTED', 'ATTENDED', 'CANCELLED'],
    zh: ['已确认', '候补', '已签到', '已取消'],
    en: ['Confirmed', 'Waitlisted', 'Attended', 'Cancelled'],
  },
  // Matching's reasons: the names of its checks and score parts.
  Check: {
    prefix: '',
    values: ['published', 'institution', 'category', 'demand_kind', 'amount', 'term', 'sector', 'region', 'collateral'],
    zh: ['产品已发布', '机构状态', '产品类别', '需求类型', '金额', '期限', '行业', '地区', '押品'],
    en: ['Published', 'Institution', 'Category', 'Demand kind', 'Amount', 'Term', 'Sector', 'Region', 'Collateral'],
  },
  ScorePart: {
    prefix: '',
    values: ['price', 'fit', 'response', 'closeness'],
    zh: ['价格', '金额与期限契合度', '机构响应记录', '地理邻近'],
    en: ['Price', 'Amount and term fit', 'Response record', 'Closeness'],
  },
  // The live feed's event types (the NATS subject after "carbondesk.").
  EventType: {
    prefix: 'matching.match.',
    values: ['proposed', 'accepted', 'declined', 'expired', 'withdrawn', 'closed', 'confirmed', 'completed', 'failed', 'flagged'],
    zh: ['新推荐', '机构接单', '机构谢绝', '响应超时', '已撤回', '已关闭', '企业确认', '成交', '未成交', '需关注'],
    en: ['New proposal', 'Accepted', 'Declined', 'Expired', 'Withdrawn', 'Closed', 'Confirmed', 'Completed', 'Failed', 'Flagged'],
  },
};

// shortName strips an enum value's prefix: PRODUCT_CATEGORY_CARBON_BOND ->
// CARBON_BOND. Short names (as stats keys are) pass through.
export function shortName(type, value) {
  const e = ENUMS[type];
  const v = String(value ?? '');
  if (e && e.prefix && v.startsWith(e.prefix)) return v.slice(e.prefix.length);
  return v;
}

// fullName is the value a request sends: CARBON_BOND -> PRODUCT_CATEGORY_CARBON_BOND.
export function fullName(type, value) {
  const e = ENUMS[type];
  const v = String(value ?? '');
  if (!e || !v || v.startsWith(e.prefix)) return v;
  return e.prefix + v;
}

// label is an enum value's readable name in the current language. An
// unknown value shows as sent.
export function label(type, value) {
  const e = ENUMS[type];
  if (value === undefined || value === null || value === '') return t('common.unspecified');
  if (!e) return String(value);
  const i = e.values.indexOf(shortName(type, value));
  if (i < 0) return shortName(type, value) || String(value);
  return e[current][i];
}

// enumValues lists an enum's full value names in proto order.
export function enumValues(type) {
  const e = ENUMS[type];
  return e ? e.values.map((v) => e.prefix + v) : [];
}

// Category classes of JR/T 0244-2022, for grouped selects and charts.
export const CATEGORY_CLASSES = [
  { key: 'financing', values: ['CARBON_BOND', 'CARBON_PLEDGE', 'CARBON_REPO', 'CARBON_CUSTODY'] },
  { key: 'trading', values: ['CARBON_FORWARD', 'CARBON_FUTURE', 'CARBON_OPTION', 'CARBON_SWAP', 'CARBON_LENDING'] },
  { key: 'support', values: ['CARBON_INDEX', 'CARBON_INSURANCE', 'CARBON_FUND'] },
  { key: 'services', values: ['VERIFICATION', 'CONSULTING', 'CARBON_LINKED_LOAN', 'ALLOWANCE_TRADE_AGENCY'] },
];

// orgName picks the name in the current language.
export function orgName(zh, en) {
  if (current === 'en' && en) return en;
  return zh || en || '';
}
