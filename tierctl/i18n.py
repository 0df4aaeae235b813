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
