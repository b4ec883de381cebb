"""Generates src/concord/members/data/countries.csv (see SOURCES.md there).

Run in a scratch venv: pip install country_converter pycountry openpyxl "pandas<3";
python scripts/countries/make_countries.py src/concord/members/data/countries.csv

Inputs (copies kept beside this script):
  m49.csv            UNSD M49 overview download (unstats.un.org/unsd/methodology/m49/overview/),
                     as mirrored in cbdq-io/datasets (downloaded 2025-11-29), 248 rows
  CLASS_FY2026.xlsx  World Bank CLASS.xlsx for FY2026 (released 1 July 2025), as mirrored
                     in GPID-WB/Class
Hand-written list: Group of 77 membership (g77.org + accessions since: Kiribati 2013,
South Sudan 2015, Azerbaijan 2019); UN membership cross-checked with country_converter.
"""
import csv
import sys
from pathlib import Path

import country_converter as coco
import pandas as pd
import pycountry

HERE = Path(__file__).parent
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "countries.csv"

m49 = pd.read_csv(HERE / "m49.csv", dtype=str, keep_default_na=False)
wb = pd.read_excel(HERE / "CLASS_FY2026.xlsx", "List of economies")
wb = wb[wb["Region"].notna()]  # drop the aggregate rows
INCOME = {"Low income": "low", "Lower middle income": "lower-middle",
          "Upper middle income": "upper-middle", "High income": "high"}
income_by_iso3 = {r.Code: INCOME.get(r._4, "") if isinstance(r._4, str) else ""
                  for r in wb.itertuples()}
# World Bank reports Jersey and Guernsey together as "Channel Islands" (CHI).
income_by_iso3["JEY"] = income_by_iso3["GGY"] = income_by_iso3["CHI"]

# Group of 77: the 135 members of "the Group of 77 and China" less China (which does not
# count itself a member) = 134, State of Palestine included.
G77 = set("""
DZ AO BJ BW BF BI CV CM CF TD KM CG CD CI DJ EG GQ ER SZ ET GA GM GH GN GW KE LS LR LY MG MW
ML MR MU MA MZ NA NE NG RW ST SN SC SL SO ZA SS SD TZ TG TN UG ZM ZW
AG AR BS BB BZ BO BR CL CO CR CU DM DO EC SV GD GT GY HT HN JM NI PA PY PE KN LC VC SR TT UY VE
AF BH BD BT BN KH KP IN ID IR IQ JO KW LA LB MY MV MN MM NP OM PK PH QA SA SG LK SY TJ TH TL
TM AE VN YE
FJ KI MH FM NR PG WS SB TO VU
AZ BA PS
""".split())

cc = coco.CountryConverter().data
un_admitted = {}
for r in cc.itertuples():
    # keyed by ISO3: country_converter stores some ISO2 cells as regexes ("^GB$|^UK$")
    if isinstance(r.ISO3, str) and str(r.UNmember) not in ("<NA>", "nan", ""):
        un_admitted[r.ISO3] = r.UNmember
UN_OBSERVERS = {"PSE", "VAT"}

rows = []
for r in m49.itertuples(index=False):
    iso2, iso3 = r[10], r[11]
    pc = pycountry.countries.get(alpha_2=iso2)
    assert pc is not None and pc.alpha_3 == iso3 and int(pc.numeric) == int(r[9]), iso2
    rows.append({
        "iso2": iso2, "iso3": iso3, "m49": f"{int(r[9]):03d}", "name": pc.name,
        "region": r[3], "sub_region": r[5], "intermediate_region": r[7],
        "ldc": int(r[12] == "x"), "lldc": int(r[13] == "x"), "sids": int(r[14] == "x"),
        "income_group": income_by_iso3.get(iso3, ""),
        "g77": int(iso2 in G77),
        "un_member": int(iso3 in un_admitted and iso3 not in UN_OBSERVERS),
    })
assert sum(r["un_member"] for r in rows) == 193
assert sum(r["g77"] for r in rows) == len(G77) == 134
assert sum(r["ldc"] for r in rows) == 44
rows.sort(key=lambda x: x["name"])
with OUT.open("w", newline="", encoding="utf-8") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
print("wrote", len(rows), "rows to", OUT)
