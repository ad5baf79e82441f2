//! The web UI's two languages (design.md, "Users"): English and Simplified
//! Chinese, chosen per user at login and kept in a cookie.
//!
//! Labels live in one table, each entry with both texts side by side, so a
//! label cannot exist in one language only. Catalogue names (models, tasks,
//! faults, parts) come from the catalogue's `name` / `name_zh`.

use crate::catalog::{Catalog, ModelId, PartId};
use crate::report::status::Status;
use crate::tickets::{Outcome, TicketKind, TicketState};
use fleetcare_ingest::j1939::{Fmi, Spn};

/// A language of the web UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    ZhCn,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Self::En, Self::ZhCn];

    /// The BCP 47 tag: the cookie's value and the page's `lang`.
    pub const fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::ZhCn => "zh-CN",
        }
    }

    /// The language's own name, for the language menu.
    pub const fn name(self) -> &'static str {
        match self {
            Self::En => "English",
            Self::ZhCn => "简体中文",
        }
    }

    /// A tag as the cookie or the form gives it; unknown tags are `None`.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(code.trim()))
    }

    /// The first language of an `Accept-Language` header that the UI has
    /// (any `zh` is Simplified Chinese); English otherwise.
    pub fn from_accept_language(header: &str) -> Self {
        for item in header.split(',') {
            let tag = item.split(';').next().unwrap_or_default().trim();
            let primary = tag.split('-').next().unwrap_or_default();
            if primary.eq_ignore_ascii_case("zh") {
                return Self::ZhCn;
            }
            if primary.eq_ignore_ascii_case("en") {
                return Self::En;
            }
        }
        Self::En
    }

    pub fn text(self) -> &'static Text {
        match self {
            Self::En => &EN,
            Self::ZhCn => &ZH_CN,
        }
    }

    pub fn state(self, s: TicketState) -> &'static str {
        use TicketState::*;
        let zh = self == Self::ZhCn;
        match s {
            Open if zh => "待处理",
            Dispatched if zh => "已派工",
            Diagnosing if zh => "诊断中",
            AwaitingParts if zh => "待备件",
            InRepair if zh => "维修中",
            QualityCheck if zh => "质检",
            Delivered if zh => "已交车",
            Closed if zh => "已关闭",
            Cancelled if zh => "已取消",
            Open => "Open",
            Dispatched => "Dispatched",
            Diagnosing => "Diagnosing",
            AwaitingParts => "Awaiting parts",
            InRepair => "In repair",
            QualityCheck => "Quality check",
            Delivered => "Delivered",
            Closed => "Closed",
            Cancelled => "Cancelled",
        }
    }

    pub fn kind(self, k: TicketKind) -> &'static str {
        use TicketKind::*;
        let zh = self == Self::ZhCn;
        match k {
            Fault if zh => "故障",
            Maintenance if zh => "保养",
            Recurring if zh => "反复故障",
            RepeatRepair if zh => "返修",
            BatchDefect if zh => "批量缺陷",
            Complaint if zh => "投诉",
            Manual if zh => "人工报修",
            Recall if zh => "召回",
            Condition if zh => "状态预警",
            Fault => "Fault",
            Maintenance => "Maintenance",
            Recurring => "Recurring failure",
            RepeatRepair => "Repeat repair",
            BatchDefect => "Batch defect",
            Complaint => "Complaint",
            Manual => "Manual report",
            Recall => "Recall",
            Condition => "Condition drift",
        }
    }

    /// A warranty decision in a few words: `in warranty until 2027-01-10
    /// (engine_hours)`.
    pub fn warranty(self, w: &crate::catalog::WarrantyDecision) -> String {
        use crate::catalog::WarrantyStatus;
        let t = self.text();
        let mut s = match w.status {
            WarrantyStatus::In => t.warranty_in,
            WarrantyStatus::Out => t.warranty_out,
            WarrantyStatus::Unknown => t.warranty_unknown,
        }
        .to_owned();
        if let Some(until) = w.until {
            s.push_str(&format!(" · {} {until}", t.warranty_until));
        }
        if let Some(basis) = w.basis {
            s.push_str(&format!(" · {} {}", t.warranty_basis, basis.as_str()));
        }
        s
    }

    /// A repair verification (C10) in a few words, with its date.
    pub fn verification(self, v: &crate::tickets::Verification) -> String {
        use crate::tickets::VerificationStatus::*;
        let t = self.text();
        let s = match v.status {
            Watching => t.verify_watching,
            Verified => t.verify_verified,
            Repeated => t.verify_repeated,
            Returned => t.verify_returned,
        };
        match v.at {
            Some(at) => format!("{s} · {}", at.format("%Y-%m-%d")),
            None => s.to_owned(),
        }
    }

    pub fn outcome(self, o: Outcome) -> &'static str {
        use Outcome::*;
        let zh = self == Self::ZhCn;
        match o {
            Repaired if zh => "已修复",
            PartReplaced if zh => "更换零件",
            NoFaultFound if zh => "未发现故障",
            Misuse if zh => "使用不当",
            Repaired => "Repaired",
            PartReplaced => "Part replaced",
            NoFaultFound => "No fault found",
            Misuse => "Misuse",
        }
    }

    pub fn status(self, s: Status) -> &'static str {
        let zh = self == Self::ZhCn;
        match s {
            Status::Ok if zh => "正常",
            Status::DueSoon if zh => "即将到期",
            Status::Overdue if zh => "已逾期",
            Status::Ok => "OK",
            Status::DueSoon => "Due soon",
            Status::Overdue => "Overdue",
        }
    }

    /// The same language as the ticket wording knows it.
    pub const fn language(self) -> crate::tickets::Language {
        match self {
            Self::En => crate::tickets::Language::En,
            Self::ZhCn => crate::tickets::Language::ZhCn,
        }
    }

    /// A ticket's title in this language, from its facts (C10).
    pub fn ticket_title(self, ticket: &crate::tickets::Ticket, catalog: &Catalog) -> String {
        crate::tickets::title_in(ticket, catalog, self.language())
    }

    /// A catalogue name in this language: `name_zh` for zh-CN when given.
    fn pick<'a>(self, name: &'a str, name_zh: Option<&'a str>) -> &'a str {
        match (self, name_zh) {
            (Self::ZhCn, Some(zh)) => zh,
            _ => name,
        }
    }

    /// A truck model's name; its id when the catalogue does not know it.
    pub fn model_name(self, catalog: &Catalog, id: &ModelId) -> String {
        catalog.model(id).map_or_else(
            || id.to_string(),
            |m| self.pick(&m.name, m.name_zh.as_deref()).to_owned(),
        )
    }

    /// A maintenance task's name on a model; the task id when unknown.
    pub fn task_name(self, catalog: &Catalog, model: &ModelId, task: &str) -> String {
        catalog.model(model).and_then(|m| m.task(task)).map_or_else(
            || task.to_owned(),
            |t| self.pick(&t.name, t.name_zh.as_deref()).to_owned(),
        )
    }

    /// A fault's catalogue name on a model, if the catalogue lists it.
    pub fn fault_name(
        self,
        catalog: &Catalog,
        model: &ModelId,
        spn: Spn,
        fmi: Fmi,
    ) -> Option<String> {
        catalog
            .fault(model, spn, fmi)
            .map(|f| self.pick(&f.name, f.name_zh.as_deref()).to_owned())
    }

    /// A part's name; its id when the catalogue does not know it.
    pub fn part_name(self, catalog: &Catalog, id: &PartId) -> String {
        catalog.part(id).map_or_else(
            || id.to_string(),
            |p| self.pick(&p.name, p.name_zh.as_deref()).to_owned(),
        )
    }
}

/// Generates [`Text`] and its two instances from one list of
/// `label: "English", "中文";` entries.
macro_rules! texts {
    ($($key:ident: $en:literal, $zh:literal;)*) => {
        /// Every label of the web UI in one language.
        #[derive(Debug)]
        pub struct Text {
            $(pub $key: &'static str,)*
        }

        static EN: Text = Text { $($key: $en,)* };
        static ZH_CN: Text = Text { $($key: $zh,)* };
    };
}

texts! {
    // Navigation and layout.
    nav_overview: "Fleet", "车队";
    more_vehicles: "More vehicles", "更多车辆";
    from_the_start: "From the start", "从头查看";
    nav_tickets: "Tickets", "工单";
    nav_trends: "Trends", "故障趋势";
    nav_parts: "Parts", "备件";
    nav_stock: "Stock", "库存";
    nav_health: "Ingest health", "接入状态";
    logout: "Log out", "退出";
    language: "Language", "语言";
    signed_in_as: "Signed in as", "当前身份";
    all_fleets: "all fleets", "全部车队";
    skip_to_content: "Skip to content", "跳到正文";
    // Login.
    login_title: "Sign in", "登录";
    login_token: "API token", "访问令牌";
    login_token_help: "The token `fleetcare tokens create` printed (fct_…).", "由 `fleetcare tokens create` 生成的令牌（fct_…）。";
    login_submit: "Sign in", "登录";
    login_failed: "That token is not valid. Check it, or ask your administrator for a new one.", "令牌无效。请检查，或向管理员申请新令牌。";
    login_required: "Sign in to continue.", "请先登录。";
    logged_out: "You are signed out.", "您已退出。";
    // Errors.
    error_not_found: "Not found", "未找到";
    error_not_found_text: "There is nothing at this address that you may see.", "此地址没有您可查看的内容。";
    error_forbidden: "Not allowed", "无权访问";
    error_forbidden_text: "Your role may not use this page.", "您的角色无权使用此页面。";
    error_bad_request: "Bad request", "请求无效";
    error_internal: "Something went wrong", "出现错误";
    error_internal_text: "The server could not show this page; its log has the details.", "服务器无法显示此页面，详情见服务器日志。";
    error_form_expired: "This form has expired. Reload the page and try again.", "表单已过期，请刷新页面后重试。";
    back_home: "Back to the start page", "返回首页";
    // Common columns and words.
    vehicle: "Vehicle", "车辆";
    vehicles: "Vehicles", "车辆";
    fleet: "Fleet", "车队";
    model: "Model", "车型";
    depot: "Depot", "站点";
    vin: "VIN", "车架号";
    commissioned: "In service since", "投入使用";
    active_faults: "Active faults", "当前故障";
    services_due: "Services due", "待保养";
    open_tickets: "Open tickets", "未结工单";
    last_seen: "Last seen", "最近在线";
    never: "never", "从未";
    none: "none", "无";
    yes: "yes", "是";
    no: "no", "否";
    overdue: "overdue", "逾期";
    due_soon: "due soon", "即将到期";
    all: "all", "全部";
    filter: "Filter", "筛选";
    clear_filter: "Clear", "清除";
    kind: "Kind", "类型";
    state: "State", "状态";
    priority: "Priority", "优先级";
    title: "Title", "标题";
    created: "Created", "创建时间";
    updated: "Updated", "更新时间";
    time: "Time", "时间";
    task: "Task", "项目";
    part: "Part", "零件";
    unit: "Unit", "单位";
    quantity: "Quantity", "数量";
    source: "Source", "来源";
    week: "Week", "周";
    episodes: "Episodes", "次数";
    first_seen: "First seen", "首次出现";
    last_occurrence: "Last seen", "最近出现";
    fault: "Fault", "故障";
    severity: "Severity", "严重度";
    nothing_here: "Nothing to show.", "暂无数据。";
    // Fleet overview.
    overview_title: "Fleet overview", "车队总览";
    with_faults: "with active faults", "有当前故障";
    with_overdue: "with overdue services", "有逾期保养";
    // Vehicle page.
    vehicle_title: "Service archive", "服务档案";
    meters: "Meters", "仪表读数";
    meter_engine_hours: "Engine hours (h)", "发动机小时 (h)";
    meter_pto_hours: "PTO hours (h)", "取力器小时 (h)";
    meter_odometer_km: "Odometer (km)", "里程 (km)";
    meter_days: "Days", "天数";
    latest: "Latest", "最新";
    meter_chart_none: "No meter readings stored yet.", "尚无仪表读数。";
    conditions: "Condition signals", "状态信号";
    condition_none: "No condition signals of this model stored yet.", "尚无该车型的状态信号。";
    condition_expected: "expected under the same load, speed and ambient", "同等负载、转速和环境温度下的预期值";
    condition_learning: "still learning this truck's normal", "仍在学习本车的正常状态";
    fault_timeline: "Fault timeline (last 90 days)", "故障时间线（近 90 天）";
    started: "Started", "开始";
    ended: "Ended", "结束";
    still_active: "active", "持续中";
    red_stop: "Red stop lamp", "红色停车灯";
    services_done: "Services", "保养与维修记录";
    performed: "Performed", "完成时间";
    parts_replaced: "Parts replaced", "更换零件";
    tickets: "Tickets", "工单";
    next_service: "Next service", "下次保养";
    due_on: "Due on", "到期日";
    expected_on: "Expected", "预计日期";
    duty_meters: "Hard duty: meters as they count toward the interval", "重载工况：按保养周期计的仪表读数";
    duty_rule: "Duty", "工况规则";
    duty_raw: "Reading", "实际读数";
    duty_adjusted: "Counted", "计入周期";
    from_ticket: "ticket", "工单";
    from_import: "import", "导入";
    service_plan: "service plan", "保养计划";
    // Tickets.
    board_title: "Ticket board", "工单看板";
    ticket: "Ticket", "工单";
    more_tickets: "More tickets", "更多工单";
    all_states: "All states", "全部状态";
    move_action: "Move", "流转";
    move_to: "Move to", "流转至";
    assignee: "Technician", "技师";
    outlet: "Service outlet", "服务网点";
    needed_to_dispatch: "needed to dispatch", "派工必填";
    satisfaction: "Satisfaction (1–5)", "满意度（1–5）";
    needed_to_close: "needed to close", "关闭必填";
    outcome: "Outcome", "处理结果";
    labour_hours: "Labour hours", "工时";
    note: "Note", "备注";
    no_moves: "Final state: no further moves.", "已结束，无后续流转。";
    moved: "Ticket moved.", "工单已流转。";
    details: "Details", "详情";
    key: "Key", "键";
    occurrences: "Occurrences", "发生次数";
    respond_by: "Respond by", "响应期限";
    resolve_by: "Resolve by", "解决期限";
    sla_breached: "SLA breached", "超出服务时限";
    escalated: "Escalated", "已升级";
    warranty: "Warranty", "保修";
    warranty_in: "in warranty", "保修期内";
    warranty_out: "out of warranty", "已过保修期";
    warranty_unknown: "unknown", "未知";
    warranty_until: "until", "截至";
    warranty_basis: "decided by", "判定依据";
    warranty_claim: "Warranty claim", "保修索赔";
    claim_as_decided: "as decided at intake", "按受理时判定";
    claim_accept: "accept (papers checked)", "受理（已核对凭证）";
    claim_decline: "decline", "不予索赔";
    covered: "claimed", "索赔";
    verification: "Repair verification", "修复验证";
    verify_watching: "watching the code", "观察故障码中";
    verify_verified: "verified: the code stayed away", "已验证：故障码未再出现";
    verify_repeated: "not held: the code came back", "未修好：故障码复现";
    verify_returned: "the code came back after the repeat window", "返修期后故障码复现";
    repeat_of: "Repeat of", "返修自";
    labour_covered: "Labour claimed", "工时索赔";
    campaign: "Recall campaign", "召回活动";
    campaigns_title: "Recall campaigns", "召回活动";
    campaign_progress: "Progress", "进度";
    campaign_closed: "closed", "已关闭";
    campaign_open: "open", "未完成";
    no_campaigns: "No recall campaign yet: open one from a batch defect on the trends page.", "暂无召回活动：可在故障趋势页的批量缺陷处发起。";
    open_campaign: "Open recall campaign", "发起召回";
    commissioned_from: "Commissioned from", "投运起始";
    commissioned_to: "Commissioned to", "投运截止";
    nav_kpis: "KPIs", "服务指标";
    kpis_title: "Service KPIs", "售后服务指标";
    kpi_from: "From", "起始日期";
    kpi_to: "To", "截止日期";
    kpi_by: "Per", "分组";
    kpi_all: "all tickets", "全部工单";
    kpi_group: "Group", "分组";
    kpi_closed: "Tickets closed", "已关闭工单";
    kpi_ftf: "First-time fix", "一次修复率";
    kpi_respond: "Hours to respond (median / p90)", "响应时长（中位 / P90，小时）";
    kpi_on_site: "Hours to reach on site (median / p90)", "到场时长（中位 / P90，小时）";
    kpi_deliver: "Hours to deliver (median / p90)", "交车时长（中位 / P90，小时）";
    kpi_downtime: "Downtime hours (P1/P2)", "停机时长（P1/P2，小时）";
    kpi_sla: "SLA met", "服务时限达成率";
    kpi_satisfaction: "Mean satisfaction", "平均满意度";
    kpi_nff: "No fault found", "未发现故障比例";
    kpi_follow_up: "Follow-ups on time", "按时回访率";
    kpi_outlet: "outlet", "服务网点";
    kpi_technician: "technician", "技师";
    kpi_model: "model", "车型";
    parts_used: "Parts used", "所用零件";
    history: "History", "历史";
    actor: "By", "操作人";
    event: "Event", "事件";
    // Trends.
    trends_title: "Fault trends", "故障趋势";
    top_faults: "Top faults per model", "各车型高发故障";
    weekly_faults: "Fault episodes per week", "每周故障次数";
    per_1000_h: "Per 1000 engine h", "每千发动机小时";
    batch_defects: "Batch defects", "批量缺陷";
    recurring_title: "Recurring failures and repeat repairs", "反复故障与返修";
    across_fleets: "across fleets", "跨车队";
    // Parts.
    parts_title: "Parts forecast", "备件需求预测";
    parts_chart: "Demand over the forecast against stock", "预测期需求与库存对比";
    parts_weekly: "Weekly demand", "每周需求";
    planned: "Planned", "计划";
    corrective: "Corrective", "故障维修";
    total: "Total", "合计";
    on_hand: "On hand", "库存";
    shortfall: "Shortfall", "缺口";
    shortfalls: "parts short", "种零件缺货";
    // Parts ledger.
    stock_title: "Parts ledger", "备件台账";
    stock_by_depot: "Stock by depot", "各站点库存";
    on_order: "On order", "在途";
    below_zero: "below zero: count it or book the receipt", "低于零：请盘点或补录入库";
    movements: "Movements", "出入库记录";
    movements_of: "Movements of", "出入库记录：";
    reference: "Reference", "单据";
    reorder_title: "Reorder suggestions", "补货建议";
    lead_time: "Lead time (days)", "采购周期（天）";
    safety_weeks: "Safety stock (weeks)", "安全库存（周）";
    reorder_point: "Reorder point", "再订货点";
    order_qty: "Order qty", "建议订货量";
    order_by: "Order by", "最迟下单日";
    nothing_to_order: "Nothing to order.", "暂无需补货的零件。";
    more_rows: "More", "更多";
    parts_check: "Parts for this fault at the depot", "本故障所需零件（站点库存）";
    needed: "Needed", "所需";
    all_on_hand: "All on hand", "全部有货";
    not_all_on_hand: "Not all on hand", "部分缺货";
    // Ingest health.
    health_title: "Ingest health", "接入状态";
    message_rates: "Message rates", "消息速率";
    counter: "Counter", "计数项";
    since_start: "Since start", "启动以来";
    per_second: "Per second (last minute)", "每秒（近一分钟）";
    received: "Received", "已接收";
    stored: "Stored", "已存储";
    duplicates: "Duplicates", "重复";
    dead_letters: "Dead letters", "无效消息";
    store_batches: "Store batches", "存储批次";
    received_chart: "Messages received per second, last 10 minutes", "近 10 分钟每秒接收消息数";
    broker: "MQTT broker", "MQTT 代理";
    embedded_broker: "embedded", "内置";
    external_broker: "external", "外部";
    connected: "Connected", "已连接";
    connections: "Connections", "连接次数";
    connection_errors: "Connection errors", "连接错误";
    subscriptions: "Subscriptions", "订阅";
    gateways_connected: "Gateways connected now", "当前已连接网关";
    address: "Address", "地址";
    modbus_devices: "Modbus devices", "Modbus 设备";
    no_devices: "No Modbus devices are configured.", "未配置 Modbus 设备。";
    last_ok: "Last good poll", "最近成功轮询";
    last_error: "Last error", "最近错误";
    failures_in_row: "Failures in a row", "连续失败";
    polls: "Polls ok / failed", "轮询成功 / 失败";
    values: "Values", "读数";
    dead_letters_by_reason: "Dead letters by reason", "无效消息原因";
    reason: "Reason", "原因";
    count: "Count", "数量";
    last: "Last", "最近";
    recent_dead_letters: "Recent dead letters", "最近的无效消息";
    topic: "Topic", "主题";
    detail: "Detail", "说明";
    service_wide: "Service-wide counters are shown to support and administrators.", "全局计数仅对技术支持和管理员显示。";
    // After-sales (issue 21): complaints, on-site and follow-up clocks, visits.
    complaint_title: "File a complaint", "登记客户投诉";
    file_complaint: "File the complaint", "提交投诉";
    optional: "optional", "可不填";
    complainant: "Complainant", "投诉人";
    complainant_name: "Name", "姓名";
    phone: "Phone", "电话";
    email: "E-mail", "电子邮件";
    channel: "Came in by", "投诉渠道";
    channel_phone: "phone", "电话";
    channel_email: "e-mail", "电子邮件";
    channel_visit: "visit", "到访";
    channel_web: "web", "网站";
    zone: "Outlet zone", "网点区域";
    zone_city: "city", "城区";
    zone_rural: "rural", "乡村";
    on_site_by: "On site by", "到场期限";
    on_site_at: "On site", "到场时间";
    follow_up_by: "Follow-up call by", "回访期限";
    follow_ups_overdue: "Follow-up calls overdue", "逾期未回访";
    visit_tasks: "Tasks of this visit", "本次保养项目";
    task_done: "Done", "已完成";
    tasks_done: "Tasks done", "完成项目";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_parse_and_follow_accept_language() {
        assert_eq!(Lang::parse("zh-cn"), Some(Lang::ZhCn));
        assert_eq!(Lang::parse("en"), Some(Lang::En));
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(
            Lang::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"),
            Lang::ZhCn
        );
        assert_eq!(Lang::from_accept_language("fr-FR, en;q=0.5"), Lang::En);
        assert_eq!(Lang::from_accept_language(""), Lang::En);
    }

    #[test]
    fn every_state_and_kind_has_both_names() {
        for s in TicketState::ALL {
            assert_ne!(Lang::En.state(s), Lang::ZhCn.state(s));
        }
        for k in TicketKind::ALL {
            assert_ne!(Lang::En.kind(*k), Lang::ZhCn.kind(*k));
        }
        assert_eq!(Lang::ZhCn.text().nav_tickets, "工单");
    }
}
