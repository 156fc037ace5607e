// The console's words in English and Chinese. The language defaults to the browser's and can
// be switched; the choice is a preference kept in localStorage (it holds no user data).

const STRINGS = {
  en: {
    language: "Language", signout: "Sign out", close: "Close", loading: "Loading…",
    refresh: "Refresh", "nav.label": "Pages",
    "nav.chat": "Chat", "nav.documents": "Documents", "nav.keys": "Keys", "nav.usage": "Usage",
    "nav.tuning": "Fine-tuning", "nav.models": "Models", "nav.audit": "Audit",
    "audit.verify": "Verify the chain", "audit.export": "Export shown (JSONL)",
    "audit.limit": "Newest", "audit.filter": "Filter",
    "audit.about": "Every request leaves a record chained to the one before by its hash: an edited, deleted or reordered record breaks the chain. Needs the admin key.",
    "audit.none": "No records.", "audit.ok": "The chain is intact: {n} records verified.",
    "audit.broken": "The chain is broken at record {seq}: {reason}. {n} records before it verified.",
    "audit.seq": "#", "audit.created_at": "Time", "audit.tenant": "Tenant",
    "audit.endpoint": "Endpoint", "audit.model": "Model", "audit.status": "Status",
    "audit.verdicts": "Verdicts", "audit.hash": "Hash",
    "signin.title": "Sign in", "signin.key": "API key",
    "signin.why": "This server needs an API key. It is kept in this browser tab only.",
    "signin.go": "Sign in",
    "chat.model": "Model", "chat.new": "New chat", "chat.ground": "Answer from documents",
    "chat.noStores": "No vector stores yet: add documents on the Documents page.",
    "chat.message": "Message", "chat.placeholder": "Ask something…",
    "chat.hint": "Enter sends, Shift+Enter starts a new line, Esc stops.",
    "chat.send": "Send", "chat.stop": "Stop", "chat.you": "You", "chat.assistant": "Assistant",
    "chat.stopped": "Stopped.", "chat.sources": "Sources", "chat.abstained": "Abstained:",
    "chat.noSource": "The cited file is not in the chosen vector stores.",
    "reason.retrieval_confidence_below_threshold": "no passage in the documents is close enough to the question",
    "reason.model_declined": "the model declined to answer from the documents",
    "reason.unsupported_answer": "the documents do not support the answer",
    "reason.question_not_covered": "the passages found do not answer this question",
    "reason.answer_restates_question": "the answer only repeated the question",
    "reason.self_check_failed": "the self-check judged the answer unsupported",
    "reason.no_matching_quote": "no sentence in the documents matches the question",
    "docs.stores": "Vector stores", "docs.storeName": "New store", "docs.create": "Create",
    "docs.name": "Name", "docs.files": "Files", "docs.status": "Status", "docs.delete": "Delete",
    "docs.confirmDelete": "Delete the vector store {name}?", "docs.noStores": "No vector stores yet.",
    "docs.pick": "Choose a vector store.", "docs.upload": "Upload files",
    "docs.drop": "…or drop files here.", "docs.uploads": "Uploads", "docs.filename": "File",
    "docs.error": "Error", "docs.remove": "Remove", "docs.search": "Search",
    "docs.searchGo": "Search", "docs.noResults": "Nothing found.", "docs.expires": "expires",
    "status.uploading": "uploading", "status.in_progress": "ingesting",
    "status.completed": "completed", "status.failed": "failed", "status.cancelled": "cancelled",
    "keys.adminKey": "Admin key", "keys.useAdmin": "Use", "keys.new": "New key",
    "keys.name": "Name", "keys.models": "Models (comma-separated, empty: all)",
    "keys.budgetDay": "Budget USD per day", "keys.rpm": "Requests per minute",
    "keys.create": "Create key", "keys.list": "Keys", "keys.none": "No keys yet.",
    "keys.limits": "Limits", "keys.created": "Created", "keys.state": "State",
    "keys.active": "active", "keys.revoked": "revoked", "keys.revoke": "Revoke",
    "keys.all": "all", "keys.day": "day",
    "keys.confirmRevoke": "Revoke the key {name}? Requests with it will be refused.",
    "keys.shownOnce": "The key for {name}, shown this once: copy it now.",
    "usage.groupBy": "Group by", "usage.metric": "Plot", "usage.days": "Days",
    "usage.who": "The admin key sees every key's usage; an API key sees its own.",
    "usage.none": "No requests in this period.", "usage.requests": "Requests",
    "usage.prompt_tokens": "Prompt tokens", "usage.completion_tokens": "Completion tokens",
    "usage.cost_usd": "Cost (USD)", "usage.cache_hits": "Cache hits",
    "usage.avg_latency_ms": "Average latency (ms)", "usage.key": "Key", "usage.model": "Model",
    "usage.target": "Target", "usage.day": "Day",
    "tune.jobs": "Jobs", "tune.none": "No fine-tuning jobs yet (create one with `ember tune create` or POST /v1/fine_tuning/jobs).",
    "tune.pick": "Choose a job.", "tune.job": "Job", "tune.model": "Model", "tune.result": "Result",
    "tune.loss": "Training loss", "tune.noLoss": "No training steps yet.",
    "tune.checkpoints": "Checkpoints", "tune.noCheckpoints": "No checkpoints yet.",
    "tune.events": "Events", "tune.step": "step", "tune.pause": "Pause", "tune.resume": "Resume",
    "tune.cancel": "Cancel", "tune.chatWith": "Chat with this model",
    "models.id": "Model", "models.owner": "Owner", "models.state": "State",
    "models.engine": "Engine", "models.memory": "Memory", "models.load": "Load",
    "models.unload": "Unload", "models.loaded": "loaded", "models.notLoaded": "not loaded",
    "models.loadedCount": "{n} loaded",
  },
  zh: {
    language: "语言", signout: "退出", close: "关闭", loading: "加载中…",
    refresh: "刷新", "nav.label": "页面",
    "nav.chat": "对话", "nav.documents": "文档", "nav.keys": "密钥", "nav.usage": "用量",
    "nav.tuning": "微调", "nav.models": "模型", "nav.audit": "审计",
    "audit.verify": "校验哈希链", "audit.export": "导出显示的记录（JSONL）",
    "audit.limit": "最新", "audit.filter": "筛选",
    "audit.about": "每个请求都留下一条记录，并以哈希与前一条相连：被修改、删除或调换顺序的记录会使链断开。需要管理密钥。",
    "audit.none": "没有记录。", "audit.ok": "哈希链完整：已校验 {n} 条记录。",
    "audit.broken": "哈希链在第 {seq} 条记录处断开：{reason}。之前的 {n} 条记录校验通过。",
    "audit.seq": "#", "audit.created_at": "时间", "audit.tenant": "租户",
    "audit.endpoint": "端点", "audit.model": "模型", "audit.status": "状态",
    "audit.verdicts": "判定", "audit.hash": "哈希",
    "signin.title": "登录", "signin.key": "API 密钥",
    "signin.why": "此服务器需要 API 密钥。密钥只保存在当前浏览器标签页中。",
    "signin.go": "登录",
    "chat.model": "模型", "chat.new": "新对话", "chat.ground": "依据文档回答",
    "chat.noStores": "还没有向量库：请在“文档”页添加文档。",
    "chat.message": "消息", "chat.placeholder": "请输入问题…",
    "chat.hint": "回车发送，Shift+回车换行，Esc 停止。",
    "chat.send": "发送", "chat.stop": "停止", "chat.you": "你", "chat.assistant": "助手",
    "chat.stopped": "已停止。", "chat.sources": "来源", "chat.abstained": "拒绝回答：",
    "chat.noSource": "所选向量库中没有被引用的文件。",
    "reason.retrieval_confidence_below_threshold": "文档中没有与问题足够接近的段落",
    "reason.model_declined": "模型拒绝依据文档回答",
    "reason.unsupported_answer": "文档不支持该回答",
    "reason.question_not_covered": "找到的段落没有回答这个问题",
    "reason.answer_restates_question": "回答只是重复了问题",
    "reason.self_check_failed": "自检判定回答缺乏依据",
    "reason.no_matching_quote": "文档中没有与问题匹配的句子",
    "docs.stores": "向量库", "docs.storeName": "新建向量库", "docs.create": "创建",
    "docs.name": "名称", "docs.files": "文件", "docs.status": "状态", "docs.delete": "删除",
    "docs.confirmDelete": "删除向量库 {name}？", "docs.noStores": "还没有向量库。",
    "docs.pick": "请选择一个向量库。", "docs.upload": "上传文件",
    "docs.drop": "……或把文件拖到这里。", "docs.uploads": "上传", "docs.filename": "文件",
    "docs.error": "错误", "docs.remove": "移除", "docs.search": "搜索",
    "docs.searchGo": "搜索", "docs.noResults": "没有找到结果。", "docs.expires": "过期于",
    "status.uploading": "上传中", "status.in_progress": "处理中",
    "status.completed": "已完成", "status.failed": "失败", "status.cancelled": "已取消",
    "keys.adminKey": "管理密钥", "keys.useAdmin": "使用", "keys.new": "新建密钥",
    "keys.name": "名称", "keys.models": "模型（逗号分隔，留空为全部）",
    "keys.budgetDay": "每日预算（美元）", "keys.rpm": "每分钟请求数",
    "keys.create": "创建密钥", "keys.list": "密钥", "keys.none": "还没有密钥。",
    "keys.limits": "限制", "keys.created": "创建时间", "keys.state": "状态",
    "keys.active": "有效", "keys.revoked": "已吊销", "keys.revoke": "吊销",
    "keys.all": "全部", "keys.day": "天",
    "keys.confirmRevoke": "吊销密钥 {name}？使用它的请求将被拒绝。",
    "keys.shownOnce": "{name} 的密钥只显示这一次：请立即复制。",
    "usage.groupBy": "分组", "usage.metric": "图表", "usage.days": "天数",
    "usage.who": "管理密钥可以看到所有密钥的用量；API 密钥只能看到自己的。",
    "usage.none": "这段时间没有请求。", "usage.requests": "请求数",
    "usage.prompt_tokens": "输入 token", "usage.completion_tokens": "输出 token",
    "usage.cost_usd": "费用（美元）", "usage.cache_hits": "缓存命中",
    "usage.avg_latency_ms": "平均延迟（毫秒）", "usage.key": "密钥", "usage.model": "模型",
    "usage.target": "目标", "usage.day": "日期",
    "tune.jobs": "任务", "tune.none": "还没有微调任务（用 `ember tune create` 或 POST /v1/fine_tuning/jobs 创建）。",
    "tune.pick": "请选择一个任务。", "tune.job": "任务", "tune.model": "模型", "tune.result": "结果",
    "tune.loss": "训练损失", "tune.noLoss": "还没有训练步骤。",
    "tune.checkpoints": "检查点", "tune.noCheckpoints": "还没有检查点。",
    "tune.events": "事件", "tune.step": "步", "tune.pause": "暂停", "tune.resume": "继续",
    "tune.cancel": "取消", "tune.chatWith": "与此模型对话",
    "models.id": "模型", "models.owner": "所有者", "models.state": "状态",
    "models.engine": "引擎", "models.memory": "内存", "models.load": "加载",
    "models.unload": "卸载", "models.loaded": "已加载", "models.notLoaded": "未加载",
    "models.loadedCount": "已加载 {n} 个",
  },
};

const PREF = "ember.lang";
const browser = (navigator.languages && navigator.languages[0]) || navigator.language || "en";
let lang = localStorage.getItem(PREF) || (browser.toLowerCase().startsWith("zh") ? "zh" : "en");
if (!STRINGS[lang]) lang = "en";

export function getLang() { return lang; }

export function setLang(value) {
  lang = STRINGS[value] ? value : "en";
  localStorage.setItem(PREF, lang);
}

export function t(key, vars = {}) {
  const text = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

// Fills every [data-i18n] element's text, and <html lang>.
export function applyI18n(root) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  }
}

// The chat page's conversations, MCP servers and tool cards.
Object.assign(STRINGS.en, {
  "chat.conversations": "Conversations", "chat.noConversations": "No conversations yet.",
  "chat.more": "More", "chat.untitled": "Untitled",
  "chat.deleteConversation": "Delete the conversation {title}",
  "chat.confirmDelete": "Delete the conversation {title}?",
  "chat.tools": "Tools (MCP servers)", "chat.needsApproval": "asks before each call",
  "chat.toolList": "Tools of {server}", "chat.arguments": "Arguments", "chat.output": "Output",
  "chat.running": "running…", "chat.searched": "Searched the documents",
  "chat.approvalTitle": "Approve the call {tool}?", "chat.approve": "Approve",
  "chat.deny": "Deny", "chat.approved": "Approved.", "chat.denied": "Denied.",
  "chat.incomplete": "Incomplete: {reason}.",
});
Object.assign(STRINGS.zh, {
  "chat.conversations": "对话记录", "chat.noConversations": "还没有对话。",
  "chat.more": "更多", "chat.untitled": "无标题",
  "chat.deleteConversation": "删除对话 {title}",
  "chat.confirmDelete": "删除对话 {title}？",
  "chat.tools": "工具（MCP 服务器）", "chat.needsApproval": "每次调用前征求同意",
  "chat.toolList": "{server} 的工具", "chat.arguments": "参数", "chat.output": "输出",
  "chat.running": "运行中…", "chat.searched": "已检索文档",
  "chat.approvalTitle": "批准调用 {tool}？", "chat.approve": "批准",
  "chat.deny": "拒绝", "chat.approved": "已批准。", "chat.denied": "已拒绝。",
  "chat.incomplete": "未完成：{reason}。",
});
