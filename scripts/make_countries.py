# Regenerates src/concord/members/data/countries.csv (see SOURCES.md beside it).
# Run in a scratch venv: pip install country_converter pycountry "pandas<3"; python scripts/make_countries.py
# The lists below are transcribed from the official sources named in SOURCES.md.
import csv, pycountry, country_converter as coco
cc = coco.CountryConverter(); d = cc.data

LOW = "AF BF BI CF TD CD ER ET GM GW KP LR MG MW ML MZ NE RW SL SO SS SD SY TG UG YE".split()
LM = ("AO BD BJ BT BO KH CM KM CG CI DJ EG SZ GH GN HT HN IN JO KE KI KG LA LB LS MR FM MA MM "
      "NA NP NI NG PK PG PH ST SN SB LK TJ TZ TL TN UZ VU VN PS ZM ZW").split()
UM = ("AL DZ AR AM AZ BY BZ BA BW BR CV CN CO CU DM DO EC SV GQ FJ GA GE GD GT ID IR IQ JM KZ XK "
      "LY MY MV MH MU MX MD MN ME MK PY PE WS RS ZA LC VC SR TH TO TR TM TV UA").split()
HIGH = ("AD AG AW AU AT BS BH BB BE BM VG BN BG CA KY CL CR HR CW CY CZ DK EE FO FI FR PF DE GI GR "
        "GL GU GY HK HU IS IE IM IL IT JP KR KW LV LI LT LU MO MT MC NR NL NC NZ MP NO OM PW PA PL "
        "PT PR QA RO RU SM SA SC SG SX SK SI ES KN MF SE CH TT TC AE GB US UY VI JE GG").split()
LDC = ("AO BJ BF BI CF TD KM CD DJ ER ET GM GN GW LS LR MG MW ML MR MZ NE RW SN SL SO SS SD TG UG "
       "TZ ZM AF BD KH LA MM NP TL YE HT KI SB TV").split()
LLDC = ("AF AM AZ BT BO BW BF BI CF TD SZ ET KZ KG LA LS MW ML MD MN NP NE MK PY RW SS TJ TM UG UZ "
        "ZM ZW").split()
SIDS = ("AG BS BB BZ CV KM CU DM DO FJ GD GW GY HT JM KI MV MH FM MU NR PW PG WS ST SG SC SB KN LC "
        "VC SR TL TO TT TV VU BH AI AW BM VG KY CK CW PF GP GU MQ MS NC NU MP PR AS SX TC VI").split()
# Group of 77: UN members of Africa and Latin America & the Caribbean (Mexico left in 1994),
# most of Asia-Pacific, plus Bosnia and Herzegovina and the State of Palestine.
NOT_G77_ASIA_PACIFIC = set("CN JP KR IL TR CY AM AZ GE KZ KG UZ PW TV AU NZ".split())

SUBS = {"Northern Africa": ("Africa", "Northern Africa", "")}
for r in ["Eastern Africa", "Middle Africa", "Southern Africa", "Western Africa"]:
    SUBS[r] = ("Africa", "Sub-Saharan Africa", r)
for r in ["Caribbean", "Central America", "South America"]:
    SUBS[r] = ("Americas", "Latin America and the Caribbean", r)
SUBS["Northern America"] = ("Americas", "Northern America", "")
for r in ["Central Asia", "Eastern Asia", "South-eastern Asia", "Southern Asia", "Western Asia"]:
    SUBS[r] = ("Asia", r, "")
SUBS["South-Eastern Asia"] = ("Asia", "South-eastern Asia", "")
for r in ["Eastern Europe", "Northern Europe", "Southern Europe", "Western Europe"]:
    SUBS[r] = ("Europe", r, "")
for r in ["Australia and New Zealand", "Melanesia", "Micronesia", "Polynesia"]:
    SUBS[r] = ("Oceania", r, "")
SUBS["Antarctica"] = ("", "", "")

rows = []
for _, r in d.iterrows():
    iso2 = {"^GR$|^EL$": "GR", "^GB$|^UK$": "GB"}.get(r["ISO2"], r["ISO2"])
    if iso2 in ("XK",) or not isinstance(iso2, str):
        continue
    if str(r.get("obsolete", "")).strip() not in ("", "nan", "<NA>"):
        continue
    pc = pycountry.countries.get(alpha_2=iso2)
    if pc is None:
        continue
    unregion = r["UNregion"]
    region, sub, inter = SUBS.get(unregion, (None, None, None))
    if region is None:
        raise SystemExit(f"unknown UNregion {unregion!r} for {iso2}")
    if iso2 in ("JE", "GG"):
        inter = "Channel Islands"
    un_member = str(r["UNmember"]) not in ("<NA>", "nan", "")
    if iso2 in ("PS", "VA"):
        un_member = False
    if region in ("Africa",) or sub == "Latin America and the Caribbean":
        g77 = un_member and iso2 != "MX"
    elif region in ("Asia", "Oceania"):
        g77 = un_member and iso2 not in NOT_G77_ASIA_PACIFIC
    else:
        g77 = iso2 == "BA"
    if iso2 == "PS":
        g77 = True
    income = ("low" if iso2 in LOW else "lower-middle" if iso2 in LM else
              "upper-middle" if iso2 in UM else "high" if iso2 in HIGH else "")
    rows.append([iso2, pc.alpha_3, f"{int(pc.numeric):03d}", pc.name, region, sub, inter,
                 int(iso2 in LDC), int(iso2 in LLDC), int(iso2 in SIDS), income, int(g77),
                 int(un_member)])
rows.sort(key=lambda x: x[3])
with open(str(__import__("pathlib").Path(__file__).parent.parent / "src/concord/members/data/countries.csv"), "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow("iso2,iso3,m49,name,region,sub_region,intermediate_region,ldc,lldc,sids,income_group,g77,un_member".split(","))
    w.writerows(rows)
print("rows", len(rows), "un", sum(r[12] for r in rows), "g77", sum(r[11] for r in rows),
      "ldc", sum(r[7] for r in rows), "lldc", sum(r[8] for r in rows), "sids", sum(r[9] for r in rows))
un = [r for r in rows if r[12]]
print("un without income:", [r[0] for r in un if not r[10]])
print("income counts", {g: sum(1 for r in rows if r[10] == g) for g in ["low","lower-middle","upper-middle","high",""]})
for code in LOW+LM+UM+HIGH+LDC+LLDC+SIDS:
    if not any(r[0]==code for r in rows): print("missing", code)
