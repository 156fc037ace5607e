"""A folder of small documents in every supported format, Chinese and English.

Each file states facts that no other file states, so a test can tell which file (and, for
the PDF, which page) a search hit or a citation came from.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

FACTS = {
    "panda.md": "野生大熊猫约有1864只",
    "tea.html": "龙井茶产于杭州西湖",
    "manual.pdf": "descaled every 90 days",
    "report.docx": "42 million dollars",
    "cities.csv": "Lhasa",
    "service.json": "8731",
    "rust.txt": "ownership and borrowing",
}


def pdf_bytes(pages: list[str]) -> bytes:
    """A minimal PDF with one line of Helvetica text per page (ASCII only)."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font_id = 3 + 2 * len(pages)
    for i, text in enumerate(pages):
        content = f"BT /F1 11 Tf 40 750 Td ({text}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def docx_bytes() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Northwind annual report", level=1)
    document.add_paragraph("Northwind is a trading company founded in 1998.")
    document.add_heading("Revenue", level=2)
    document.add_paragraph("Northwind revenue in 2023 was 42 million dollars, up from 35 million.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def write_documents(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "panda.md": "# 大熊猫\n大熊猫是中国特有的物种，主要栖息在四川、陕西和甘肃的山区。"
        "它们每天要吃大约12公斤竹子。\n\n## 数量\n根据第四次全国大熊猫调查，"
        "野生大熊猫约有1864只。圈养大熊猫的数量也在增加。\n".encode(),
        "tea.html": "<html><head><style>p{}</style></head><body><h1>中国名茶</h1>"
        "<p>龙井茶产于杭州西湖一带，是绿茶的代表。</p><h2>普洱</h2>"
        "<p>普洱茶产于云南，属于黑茶，可以长期存放。</p></body></html>".encode(),
        "manual.pdf": pdf_bytes(
            [
                "Zephyr-9 pump manual. Read all safety notes before installation.",
                "Maintenance: the Zephyr-9 pump must be descaled every 90 days.",
            ]
        ),
        "report.docx": docx_bytes(),
        "cities.csv": b"city,province,population\nChengdu,Sichuan,21 million\n"
        b"Lhasa,Tibet,0.9 million\n",
        "service.json": json.dumps(
            {"service": {"name": "billing-gateway", "port": 8731, "owner": "payments team"}}
        ).encode(),
        "rust.txt": b"Rust is a systems programming language. Its compiler enforces memory "
        b"safety through ownership and borrowing. Cargo is its build tool and package manager.",
    }
    paths = {}
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        paths[name] = path
    return paths
