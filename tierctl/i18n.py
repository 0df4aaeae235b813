"""The few fixed labels the terminal shows, in Chinese (default) and English.

Domain texts that a manager may edit (reasons, owners, responses) live in the model
files, which carry ``*_en`` variants where a report needs them."""

from __future__ import annotations

LABELS: dict[str, dict[str, str]] = {
    "crisis": {"zh": "危机等级", "en": "Crisis level"},
    "level_suffix": {"zh": "级", "en": ""},
    "title": {"zh": "{as_of} 配件短缺客户分层（模型 {model}，{n} 位）",
              "en": "{as_of} parts-shortage tiers (model {model}, {n} customers)"},
    "tier": {"zh": "级别", "en": "Tier"},
    "score": {"zh": "总分", "en": "Score"},
    "customer": {"zh": "客户", "en": "Customer"},
    "phone": {"zh": "电话", "en": "Phone"},
    "car": {"zh": "车型", "en": "Car"},
    "wait": {"zh": "等待", "en": "Wait"},
    "days": {"zh": "{n}天", "en": "{n} d"},
    "owner": {"zh": "负责人", "en": "Owner"},
    "respond_by": {"zh": "时限", "en": "Respond by"},
    "reason": {"zh": "主要原因", "en": "Main reason"},
    "more": {"zh": "… 另有 {n} 位未显示（--limit 0 显示全部，或用 --format csv 导出）",
             "en": "… {n} more not shown (--limit 0 shows all; --format csv exports them)"},
    "total": {"zh": "合计：", "en": "Total: "},
    "count": {"zh": "{tier} {n} 位（{share}{flag}）", "en": "{tier} {n} ({share}{flag})"},
    "off_share": {"zh": " ⚠偏离常见比例", "en": " ⚠ far from the usual share"},
    # media attention (SPEC A4.6): the mark in the table and the line under the crisis level
    "media_mark": {"zh": "媒", "en": "M"},
    "media_line": {"zh": "媒体关注 {n} 位（{who}）：危机已标记为需要公关预案（名单中标「媒」）",
                   "en": "Media attention on {n} customer(s) ({who}): the crisis is flagged for the PR plan "
                         "(marked M in the list)"},
}


def t(key: str, lang: str = "zh", **values: object) -> str:
    entry = LABELS[key]
    text = entry[lang] if lang in entry else entry["zh"]
    return text.format(**values) if values else text


# typer's and click's own words (help pages, usage errors), shown in Chinese unless the
# run is in English (--lang en, or centre.lang = "en" in the config)
FRAMEWORK_ZH: dict[str, str] = {
    "Show this message and exit.": "显示此帮助并退出",
    "Install completion for the current shell.": "为当前 shell 安装命令补全（Tab 键补全命令和选项）",
    "Show completion for the current shell, to copy it or customize the installation.":
        "显示当前 shell 的补全脚本，可复制或自行安装",
    "Install completion for the specified shell.": "为指定的 shell 安装命令补全",
    "Show completion for the specified shell, to copy it or customize the installation.":
        "显示指定 shell 的补全脚本，可复制或自行安装",
    "Arguments": "参数",
    "Options": "选项",
    "Commands": "命令",
    "Error": "用法错误",
    "Aborted.": "已中断。",
    "Usage: ": "用法：",
    "[OPTIONS]": "[选项]",
    "COMMAND [ARGS]...": "命令 [参数]...",
    "[default: {}]": "[默认：{}]",
    "[env var: {}]": "[环境变量：{}]",
    "[required]": "[必填]",
    "(deprecated) ": "（已停用）",
    "Try [blue]'{command_path} {help_option}'[/] for help.": "查看帮助：[blue]{command_path} {help_option}[/]",
}

# click's usage-error messages, pattern → Chinese (the names and values they quote kept)
USAGE_ERRORS_ZH: tuple[tuple[str, str], ...] = (
    (r"^Missing argument '(?P<a>[^']+)'\.", "缺少参数 {a}"),
    (r"^Missing option '(?P<a>[^']+)'\.", "缺少选项 {a}"),
    (r"^Missing parameter: (?P<a>\S+)", "缺少参数 {a}"),
    (r"^Missing command\.", "缺少命令"),
    (r"^No such option: (?P<a>\S+) \(Possible options: (?P<b>[^)]*)\)", "没有这个选项：{a}（您是不是想用 {b}？）"),
    (r"^No such option: (?P<a>\S+)", "没有这个选项：{a}"),
    (r"^No such command '(?P<a>[^']+)'\. Did you mean (?P<b>.+)\?", "没有这个命令：{a}（您是不是想用 {b}？）"),
    (r"^No such command '(?P<a>[^']+)'\.", "没有这个命令：{a}"),
    (r"^Got unexpected extra argument(?:\(s\)|s)? \((?P<a>.*)\)", "多余的参数：{a}"),
    (r"^Option '(?P<a>[^']+)' requires an argument\.", "选项 {a} 后面要写一个值"),
    (r"^Option '(?P<a>[^']+)' requires (?P<b>\d+) arguments\.", "选项 {a} 后面要写 {b} 个值"),
    (r"^Invalid value for '(?P<a>[^']+)': '(?P<b>.*)' is not a valid (?:int|integer)\.", "{a} 的值「{b}」不是整数"),
    (r"^Invalid value for '(?P<a>[^']+)': '(?P<b>.*)' is not a valid float\.", "{a} 的值「{b}」不是数字"),
    (r"^Invalid value for '(?P<a>[^']+)': '(?P<b>.*)' is not a valid boolean\.", "{a} 的值「{b}」不是是/否（true/false）"),
    (r"^Invalid value for '(?P<a>[^']+)': '(?P<b>.*)' is not one of (?P<c>.*)\.", "{a} 的值「{b}」不在可选值 {c} 之中"),
    (r"^Invalid value for '(?P<a>[^']+)': (?P<b>.*)", "{a} 的值无效：{b}"),
)
