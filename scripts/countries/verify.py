import csv, sys, pycountry, pandas as pd, country_converter as coco
path = sys.argv[1]
rows = list(csv.DictReader(open(path, encoding="utf-8")))
print("header", list(rows[0].keys()))
print("rows", len(rows))
S = lambda c: sum(int(r[c]) for r in rows)
for c in ["un_member", "g77", "ldc", "lldc", "sids"]:
    print(c, S(c))
print("income", pd.Series([r["income_group"] or "(empty)" for r in rows]).value_counts().to_dict())
print("regions", pd.Series([r["region"] or "(empty)" for r in rows]).value_counts().to_dict())
assert all(r["region"] in ("Africa","Americas","Asia","Europe","Oceania","") for r in rows)
assert all(pycountry.countries.get(alpha_2=r["iso2"]).name == r["name"] for r in rows)
assert all(pycountry.countries.get(alpha_2=r["iso2"]).alpha_3 == r["iso3"] for r in rows)
assert all(len(r["m49"]) == 3 for r in rows)
assert len({r["iso2"] for r in rows}) == len(rows)
un = [r for r in rows if r["un_member"] == "1"]
print("UN members without income group:", [r["iso2"] for r in un if not r["income_group"]])
print("g77 non-UN:", [r["iso2"] for r in rows if r["g77"] == "1" and r["un_member"] == "0"])
print("LDC not g77:", [r["iso2"] for r in rows if r["ldc"] == "1" and r["g77"] == "0"])
print("UN SIDS not g77:", [r["iso2"] for r in rows if r["sids"] == "1" and r["un_member"] == "1" and r["g77"] == "0"])
print("LLDC not g77:", [r["iso2"] for r in rows if r["lldc"] == "1" and r["g77"] == "0"])
print("CN", [r for r in rows if r["iso2"] == "CN"])
# formula cross-check: UN members + PS, less CoE (but BA, AZ), OECD (but CL CO CR), CIS full, PW TV, CN
cc = coco.CountryConverter().data
def members(col):
    return {r.ISO2 for r in cc.itertuples() if isinstance(r.ISO2, str) and str(getattr(r, col)) not in ("nan", "<NA>", "")}
coe, oecd, cis = members("CoE"), members("OECD"), members("CIS")
print("coco CoE", len(coe), "OECD", len(oecd), "CIS", sorted(cis))
formula = {r["iso2"] for r in un} | {"PS"}
formula -= (coe - {"BA", "AZ"}) | (oecd - {"CL", "CO", "CR"}) | (cis - {"TJ", "AZ", "TM"}) | {"PW", "TV", "CN", "RU", "BY"}
g = {r["iso2"] for r in rows if r["g77"] == "1"}
print("formula size", len(formula), "diff table-formula", g - formula, "formula-table", formula - g)
# WB economies not mapped
wb = pd.read_excel("/tmp/concord_countries/CLASS_FY2026.xlsx", "List of economies"); wb = wb[wb.Region.notna()]
iso3s = {r["iso3"] for r in rows}
print("WB economies not in table:", [c for c in wb.Code if c not in iso3s])
print("rows without income:", [r["iso2"] for r in rows if not r["income_group"]])
for k in ["CR","NA","DZ","IR","MN","CV","WS","ET","VE","PS","RU","GY","JE","GG","HK","MO","PR","GL","AQ","VA"]:
    r = next(x for x in rows if x["iso2"] == k); print(",".join(r.values()))
