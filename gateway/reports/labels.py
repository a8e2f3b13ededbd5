"""The report's words, Vietnamese first and English in parentheses (one place, so the HTML
and XLSX outputs say the same), and numbers written the Vietnamese way (650.000; 12,5 %)."""

from __future__ import annotations

LABELS: dict[str, tuple[str, str]] = {
    "title": ("Báo cáo tình hình gửi, nhận văn bản điện tử", "Electronic document exchange report"),
    "node": ("Trục liên thông", "Node"),
    "period": ("Kỳ báo cáo", "Period"),
    "timezone": ("Múi giờ", "Time zone"),
    "generated": ("Lập lúc", "Generated at"),
    "summary": ("Tổng hợp", "Summary"),
    "sent": ("Văn bản gửi đi", "Documents sent"),
    "received": ("Văn bản nhận về", "Documents received"),
    "total": ("Tổng số", "Total"),
    "electronic_only": ("Chỉ gửi điện tử", "Electronic only"),
    "with_paper": ("Kèm bản giấy", "With paper copy"),
    "share": ("Tỷ lệ", "Share"),
    "by_level": ("Theo cấp của mã định danh", "By level of the agency code"),
    "level": ("Cấp", "Level"),
    "level_1": ("Cấp 1 (bộ, tỉnh)", "Level 1 (ministries, provinces)"),
    "level_2": ("Cấp 2 (sở, huyện)", "Level 2 (departments, districts)"),
    "level_3": ("Cấp 3 (xã, đơn vị trực thuộc)", "Level 3 (communes, sub-units)"),
    "level_4": ("Cấp 4", "Level 4"),
    "routes": ("Liên thông qua trục quốc gia và nội bộ", "Through peers and inside the node"),
    "via_peers": ("Qua trục liên thông khác", "Through peers"),
    "inside": ("Trong trục", "Inside the node"),
    "feedback": ("Phản hồi trạng thái văn bản", "Status feedback"),
    "feedback_agencies": ("Cơ quan nhận văn bản", "Agencies that received documents"),
    "five_or_more": ("Từ 5 trạng thái trở lên", "5 status codes or more"),
    "three_to_four": ("3–4 trạng thái", "3 to 4 status codes"),
    "fewer_than_three": ("Dưới 3 trạng thái", "Fewer than 3 status codes"),
    "agencies": ("Số liệu theo cơ quan", "Per agency"),
    "code": ("Mã định danh", "Code"),
    "name": ("Tên cơ quan", "Name"),
    "sent_with_paper": ("Gửi kèm giấy", "Sent with paper"),
    "received_with_paper": ("Nhận kèm giấy", "Received with paper"),
    "sent_electronic_only": ("Gửi chỉ điện tử", "Sent electronic only"),
    "received_electronic_only": ("Nhận chỉ điện tử", "Received electronic only"),
    "sent_paper_share": ("Tỷ lệ gửi kèm giấy", "Share sent with paper"),
    "received_paper_share": ("Tỷ lệ nhận kèm giấy", "Share received with paper"),
    "sent_via_peers": ("Gửi qua trục khác", "Sent through peers"),
    "received_via_peers": ("Nhận qua trục khác", "Received through peers"),
    "status_codes": ("Số trạng thái phản hồi", "Distinct status codes"),
    "unnamed": ("(không có trong danh bạ)", "(not in the directory)"),
    "others": ("Các cơ quan khác", "Other agencies"),
    "full_table": (
        "Bảng đầy đủ: tệp CSV hoặc XLSX của cùng kỳ báo cáo",
        "The whole table: the CSV or XLSX file of the same period",
    ),
    "sent_short": ("Gửi đi", "Sent"),
    "received_short": ("Nhận về", "Received"),
    "paper_short": ("Kèm giấy", "With paper"),
    "agencies_count": ("Số cơ quan", "Agencies"),
    "count": ("Số lượng", "Count"),
}


def vi(key: str) -> str:
    return LABELS[key][0]


def en(key: str) -> str:
    return LABELS[key][1]


def both(key: str) -> str:
    """`Văn bản gửi đi (Documents sent)`."""
    text_vi, text_en = LABELS[key]
    return f"{text_vi} ({text_en})"


def level_label(level: int) -> tuple[str, str]:
    return LABELS.get(f"level_{level}", (f"Cấp {level}", f"Level {level}"))


def number(value: int) -> str:
    """Thousands separated by dots: `650.000`."""
    return f"{value:,}".replace(",", ".")


def share(value: float) -> str:
    """One decimal with a comma: `12,5 %`."""
    return f"{value:.1f}".replace(".", ",") + " %"
