"""Writes the candidate files and gold labels of the packaged fixture review
(medreason_dist/data/leads/knee_oa_exercise/): 16 invented eligible trials and 34 invented
ineligible studies, each with the criterion it fails, spread over RIS, CSV and PubMed XML with
three cross-format duplicates and one record without a title. Deterministic (seed 7). The
protocol, full texts and gold extraction values there are written by hand.

    python benchmarks/make_leads_fixture.py
"""
import csv
import json
import os
import random
from pathlib import Path
from xml.sax.saxutils import escape

os.chdir(Path(__file__).resolve().parents[1] / "medreason_dist" / "data" / "leads" / "knee_oa_exercise")
rng = random.Random(7)
countries = ["Denmark", "Australia", "Norway", "Brazil", "Netherlands", "Canada", "United Kingdom", "Japan",
             "Spain", "Turkey", "Iran", "United States", "New Zealand", "Sweden", "China"]
programmes = ["quadriceps strengthening", "neuromuscular exercise", "aquatic exercise", "tai chi",
              "home-based strengthening with physiotherapist visits", "group circuit training", "walking and strengthening",
              "hip and knee strengthening", "yoga-based exercise", "high-intensity resistance training"]
controls = ["usual care", "an education booklet", "a waiting list", "attention-control education sessions", "no exercise advice"]
scales = ["WOMAC pain", "VAS", "NRS", "KOOS pain"]
recs = []
pmid = 30100000
def add(title, abstract, included, why, year, **kw):
    global pmid
    pmid += rng.randint(7, 900)
    recs.append(dict(title=title, abstract=abstract, included=included, why=why, year=year, pmid=str(pmid), **kw))
# 16 eligible trials
for i in range(16):
    c, p, ctl, sc = countries[i % len(countries)], programmes[i % len(programmes)], controls[i % len(controls)], scales[i % 4]
    n = rng.choice([60, 72, 88, 100, 120, 146, 180, 210]); wk = rng.choice([6, 8, 10, 12, 16, 24]); age = round(rng.uniform(56, 69), 1)
    title = f"{p.capitalize()} versus {ctl} for knee osteoarthritis pain in {c}: a randomised controlled trial" if i % 2 == 0 else \
        f"Effect of a {wk}-week {p} programme on pain in people with knee osteoarthritis: randomised trial in {c}"
    abstract = (f"Background: Exercise is recommended for knee osteoarthritis but the best programme is unclear. "
                f"Methods: We randomly allocated {n} adults (mean age {age} years) with symptomatic knee osteoarthritis in {c} "
                f"to {wk} weeks of supervised {p} or {ctl}. The primary outcome was knee pain on the {sc} scale. "
                f"Results: Pain fell more in the exercise group than in the control group at {wk} weeks. "
                f"Conclusion: {p.capitalize()} reduced knee pain compared with {ctl}.")
    add(title, abstract, True, "eligible", rng.randint(2004, 2024), country=c, n=n, age=age, weeks=wk, control=ctl, scale=sc)
# ineligible, with the criterion they fail
bad = [
    ("Strengthening exercise after total knee arthroplasty: a randomised trial of early rehabilitation",
     "Patients recovering from knee replacement were randomised to progressive strengthening or standard rehabilitation; pain and function were measured at 3 months.", "I2: knee replacement"),
    ("Rehabilitation exercise following unicompartmental knee replacement: randomised comparison of two protocols",
     "Sixty patients after unicompartmental knee replacement received one of two exercise protocols; pain scores were similar.", "I2: knee replacement"),
    ("Hip osteoarthritis and exercise therapy: a randomised controlled trial",
     "Adults with hip osteoarthritis were allocated to exercise therapy or usual care; hip pain was the primary outcome.", "I2: hip, not knee"),
    ("Exercise for chronic low back pain in older adults: randomised trial",
     "Older adults with low back pain performed a supervised exercise programme or received usual care.", "I2: not osteoarthritis"),
    ("Physical activity and knee pain in a community cohort followed for ten years",
     "In this prospective cohort of 2,400 adults, self-reported physical activity was related to incident knee pain.", "I1: cohort study"),
    ("Knee osteoarthritis patients attending a physiotherapy clinic: a retrospective review of exercise outcomes",
     "We reviewed the records of 310 patients who completed clinic-based exercise; pain improved from intake to discharge.", "I1: not randomised"),
    ("Intra-articular hyaluronic acid versus placebo for knee osteoarthritis: a randomised trial",
     "Adults with knee osteoarthritis received three injections of hyaluronic acid or saline; pain was measured at 26 weeks.", "I3: not exercise"),
    ("Topical diclofenac for knee osteoarthritis pain: randomised double-blind trial",
     "Participants applied topical diclofenac or vehicle gel for 12 weeks; WOMAC pain was the primary outcome.", "I3: not exercise"),
    ("Weight loss by diet alone in overweight adults with knee osteoarthritis: randomised trial",
     "A dietary weight-loss programme without exercise was compared with usual care over 18 months.", "I3: not exercise"),
    ("Treadmill running and cartilage degeneration in a rat model of knee osteoarthritis",
     "Rats with surgically induced osteoarthritis ran on a treadmill for 8 weeks; cartilage histology was scored.", "E1: animal study"),
    ("Mechanical loading of human cartilage explants: an in vitro study",
     "Cartilage explants from donors were loaded cyclically and gene expression was measured.", "E1: laboratory study"),
    ("Exercise therapy for knee osteoarthritis: a systematic review and meta-analysis",
     "We pooled 54 randomised trials of land-based exercise for knee osteoarthritis; exercise reduced pain.", "E2: review"),
    ("Why exercise should be first-line care for knee osteoarthritis: an editorial",
     "An editorial on the place of exercise in osteoarthritis guidelines.", "E2: editorial"),
    ("Protocol for a randomised trial of tele-rehabilitation exercise for knee osteoarthritis",
     "This protocol describes a planned trial; recruitment starts next year and no results are reported.", "E2: protocol"),
    ("Severe knee pain during aquatic exercise: a case report",
     "We describe one patient with knee osteoarthritis who developed a haemarthrosis during aquatic exercise.", "E2: case report"),
    ("Exercise and balance training for falls in older adults: randomised trial",
     "Community-dwelling older adults did balance training or usual activity; falls were counted for one year.", "I4: no knee pain outcome"),
    ("Quadriceps strength and gait in knee osteoarthritis after a 12-week exercise programme: randomised trial",
     "Sixty participants were randomised to exercise or control; quadriceps strength and gait speed were measured, pain was not assessed.", "I4: no pain outcome"),
    ("Acupuncture for knee osteoarthritis: randomised sham-controlled trial",
     "Participants received acupuncture or sham needling for 8 weeks; pain improved similarly in both groups.", "I3: not exercise"),
    ("Knee bracing in medial knee osteoarthritis: randomised trial",
     "An unloader brace was compared with usual care for 12 weeks in adults with medial knee osteoarthritis.", "I3: not exercise"),
    ("Cost of osteoarthritis care in primary practice: a cross-sectional survey",
     "A survey of 1,100 general practices estimated the yearly cost of osteoarthritis consultations.", "I1: survey"),
    ("Exercise in juvenile idiopathic arthritis of the knee: randomised trial in children",
     "Children aged 8 to 16 with juvenile arthritis did an exercise programme or usual care.", "I2: children, not osteoarthritis"),
    ("Glucosamine sulfate for knee osteoarthritis: a three-year randomised trial",
     "Oral glucosamine or placebo was taken daily; joint space narrowing and pain were measured.", "I3: not exercise"),
    ("Platelet-rich plasma injections versus exercise advice in knee osteoarthritis",
     "A non-randomised comparison of patients who chose injections or exercise advice at a sports clinic.", "I1: not randomised"),
    ("Stem cell injection for knee cartilage defects in young athletes",
     "Twelve athletes with focal cartilage defects received autologous stem cells; no control group.", "I2: not osteoarthritis"),
    ("Electrical stimulation of the quadriceps after anterior cruciate ligament reconstruction",
     "Patients after ligament reconstruction were randomised to stimulation or standard physiotherapy.", "I2: not osteoarthritis"),
    ("Yoga for rheumatoid arthritis of the hands: randomised pilot trial",
     "Adults with rheumatoid arthritis did yoga or waited; hand pain and grip strength were assessed.", "I2: not knee osteoarthritis"),
    ("Opioid prescribing trends for osteoarthritis in older adults",
     "Prescriptions for opioids among adults with osteoarthritis were analysed over fifteen years.", "I1: observational"),
    ("Exercise therapy in haemophilic arthropathy of the knee: randomised trial",
     "Men with haemophilic knee arthropathy did supervised exercise or usual care; bleeding episodes were recorded.", "I2: not osteoarthritis"),
    ("Cartilage thickness measured by MRI in runners and non-runners",
     "MRI measurements of knee cartilage were compared between marathon runners and sedentary adults.", "I1: cross-sectional"),
    ("Interview study of barriers to exercise among people with knee osteoarthritis",
     "Semi-structured interviews with 24 people explored why they did or did not exercise.", "I1: qualitative study"),
    ("Knee osteoarthritis and exercise: an overview of clinical guidelines",
     "We compared recommendations for exercise in eleven osteoarthritis guidelines.", "E2: review"),
    ("Manual therapy alone versus sham for knee osteoarthritis: randomised trial",
     "Joint mobilisation without exercise was compared with sham mobilisation over six weeks.", "I3: not exercise"),
    ("Heel wedges for medial knee osteoarthritis: randomised crossover trial",
     "Lateral wedge insoles and flat insoles were worn for 4 weeks each; knee pain was similar.", "I3: not exercise"),
    ("Genetic variants associated with knee osteoarthritis: genome-wide association study",
     "A genome-wide association study of 30,000 cases identified new risk loci.", "I1: genetic association study"),
]
for t, a, why in bad:
    add(t, a, False, why, rng.randint(2003, 2024))
print(f"{len(recs)} studies, {sum(r['included'] for r in recs)} eligible")
order = list(range(len(recs))); rng.shuffle(order)
ris_i, csv_i, xml_i = order[:18], order[18:34], order[34:]
# duplicates: 3 records appear twice (in RIS and XML)
dups = ris_i[:3]
def ris_entry(r, with_pmid=True):
    lines = ["TY  - JOUR", f"TI  - {r['title']}", f"AB  - {r['abstract']}", f"PY  - {r['year']}",
             "AU  - Author, A.", "JO  - Journal of Musculoskeletal Trials"]
    if with_pmid:
        lines += [f"AN  - {r['pmid']}", "DB  - PubMed"]
    return "\n".join(lines + ["ER  - ", ""])
with open("candidates.ris", "w") as f:
    for i in ris_i:
        f.write(ris_entry(recs[i], with_pmid=i not in dups) + "\n")
    f.write("TY  - JOUR\nAB  - An export line without a title: this record goes to quarantine.\nER  - \n\n")
with open("candidates.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["title", "abstract", "doi", "pmid", "authors", "year"])
    for i in csv_i:
        r = recs[i]
        w.writerow([r["title"], r["abstract"], f"10.5555/msk.{r['pmid']}", r["pmid"], "Author A; Writer B", r["year"]])
def article(r):
    return (f"<PubmedArticle><MedlineCitation Status=\"MEDLINE\" Owner=\"NLM\"><PMID Version=\"1\">{r['pmid']}</PMID>"
            f"<Article PubModel=\"Print\"><Journal><JournalIssue><PubDate><Year>{r['year']}</Year></PubDate></JournalIssue>"
            f"<Title>Journal of Musculoskeletal Trials</Title></Journal><ArticleTitle>{escape(r['title'])}</ArticleTitle>"
            f"<Abstract><AbstractText>{escape(r['abstract'])}</AbstractText></Abstract>"
            f"<AuthorList><Author><LastName>Author</LastName><Initials>A</Initials></Author></AuthorList>"
            f"<PublicationTypeList><PublicationType>Journal Article</PublicationType></PublicationTypeList></Article>"
            f"</MedlineCitation><PubmedData><ArticleIdList><ArticleId IdType=\"pubmed\">{r['pmid']}</ArticleId>"
            f"</ArticleIdList></PubmedData></PubmedArticle>\n")
with open("pubmed.xml", "w") as f:
    f.write('<?xml version="1.0" ?>\n<PubmedArticleSet>\n')
    for i in xml_i + dups:
        f.write(article(recs[i]))
    f.write("</PubmedArticleSet>\n")
with open("gold_labels.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["pmid", "title", "included", "reason"])
    for r in recs:
        w.writerow([r["pmid"], r["title"], int(r["included"]), r["why"]])
