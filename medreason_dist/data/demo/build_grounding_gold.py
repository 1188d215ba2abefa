"""Build ``grounding_gold.jsonl``: a hand-checked gold set for entity grounding on the demo KG.

Each question below is a compact hand-written spec. ``q`` lists every mention in the question
stem of a concept that has a node in ``../demo_kg/kg.csv`` as ``(surface as written, node)``;
``a`` lists the node(s) the correct option names, with the surface as written in that option.
A node is given by its exact KG name, or as ``(name, type)`` where two nodes share the name
up to case (``atrial fibrillation`` is both a disease and an effect/phenotype node).

Annotation rules (applied to the new and the demo questions alike):

- Exhaustive on the stem: diseases, symptoms / signs / lab findings, drugs (generic or brand),
  genes / proteins, anatomy, exposures, pathways and GO terms, whatever words are used.
  Demographic and generic words (man, patient, history, drug, gene, enzyme) are not linked,
  nor are concepts without a node here (e.g. "upper esophageal sphincter", "ST elevation"),
  nor drug or receptor classes that no single node names ("alpha receptors", "loop diuretic").
- Mentions are maximal spans: a node name nested inside a longer mention is not linked again
  ("heart" in "heart failure", "psoriasis" in "psoriasis-like rash").
- Where a name is both a disease and a phenotype node, the disease is linked when the text
  presents it as the patient's condition or diagnosis, the phenotype when it is a finding.
  "hypertension" is linked to the phenotype node ``Hypertension`` (the disease node is
  ``hypertensive disorder``).
- The same node mentioned twice is listed once, with its first surface.

``phrasing``: ``kg_names`` when every gold surface is the node's own name up to case, plural,
hyphenation and possessive; otherwise ``synonym`` (clinical synonym, abbreviation, brand,
gene full name, British spelling, shortened name) or ``lay`` (at least one plain-language
term such as "dry mouth" or "bad breath"). The script checks the kg_names / other split.

``path``: one shortest path (undirected BFS over kg.csv) from a gold question node to a gold
answer node, at most 3 hops; required for new questions, ``[]`` allowed for demo questions.

Usage: python build_grounding_gold.py [--out PATH] [--lint]
(--lint also prints node names found in a stem but not annotated, to review by hand).
Deterministic: a rerun writes the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections import deque
from pathlib import Path

HERE = Path(__file__).resolve().parent
KG_CSV = HERE.parent / "demo_kg" / "kg.csv"
DEMO_QA = HERE / "qa_sample.jsonl"
OUT = HERE / "grounding_gold.jsonl"
MAX_HOPS = 3
PHRASINGS = ("kg_names", "synonym", "lay")

AF = ("atrial fibrillation", "disease")
CKD = ("chronic kidney disease", "disease")
PHEO = ("pheochromocytoma", "disease")
HYPERPRL = ("hyperprolactinemia", "disease")

NEW: list[dict] = []


def Q(*, phrasing: str, question: str, options: dict, answer_idx: str, q: list, a: list, set: str = "new") -> None:
    NEW.append(dict(set=set, phrasing=phrasing, question=question, options=options, answer_idx=answer_idx, q=q, a=a))


# --------------------------------------------------------------------------------------------
# New questions
# --------------------------------------------------------------------------------------------

# drug adverse effect (shared side effect)
Q(phrasing="kg_names",
  question="A 62-year-old man with heart failure is started on spironolactone and months later develops "
           "painful gynecomastia. Which other drug used for heart failure is also known to cause this adverse effect?",
  options={"A": "Digoxin", "B": "Furosemide", "C": "Lisinopril", "D": "Captopril"}, answer_idx="A",
  q=[("heart failure", "heart failure"), ("spironolactone", "Spironolactone"), ("gynecomastia", "Gynecomastia")],
  a=[("Digoxin", "Digoxin")])

# drug contraindication
Q(phrasing="kg_names",
  question="A 45-year-old woman with hereditary angioedema is found to have hypertension at a routine visit. "
           "Which antihypertensive should be avoided?",
  options={"A": "Nifedipine", "B": "Lisinopril", "C": "Hydrochlorothiazide", "D": "Atenolol"}, answer_idx="B",
  q=[("hereditary angioedema", "hereditary angioedema"), ("hypertension", "Hypertension")],
  a=[("Lisinopril", "Lisinopril")])

# drug indication + target, abbreviation
Q(phrasing="synonym",
  question="A 58-year-old man with COPD is prescribed a once-daily inhaler that blocks the M3 muscarinic receptor. "
           "Which drug was prescribed?",
  options={"A": "Tiotropium", "B": "Salmeterol", "C": "Montelukast", "D": "Theophylline"}, answer_idx="A",
  q=[("COPD", "chronic obstructive pulmonary disease"), ("M3 muscarinic receptor", "CHRM3")],
  a=[("Tiotropium", "Tiotropium")])

# disease-gene via phenotypes
Q(phrasing="kg_names",
  question="A 24-year-old man has recurrent syncope and one documented episode of ventricular tachycardia. "
           "His ECG shows coved ST elevation in leads V1-V3. A mutation in which gene is most likely?",
  options={"A": "SCN5A", "B": "MYH7", "C": "KCNH2", "D": "HCN4"}, answer_idx="A",
  q=[("syncope", "Syncope"), ("ventricular tachycardia", "Ventricular tachycardia")],
  a=[("SCN5A", "SCN5A")])

# lay phenotype -> disease -> drug, anatomy
Q(phrasing="lay",
  question="A 35-year-old woman has milk leaking from her nipples and has missed her periods for four months. "
           "MRI shows a small tumour in the pituitary gland. Which dopamine agonist is the preferred treatment?",
  options={"A": "Cabergoline", "B": "Haloperidol", "C": "Metoclopramide", "D": "Levothyroxine"}, answer_idx="A",
  q=[("milk leaking from her nipples", "Galactorrhea"), ("pituitary gland", "pituitary gland")],
  a=[("Cabergoline", "Cabergoline")])

# exposure -> disease
Q(phrasing="kg_names",
  question="A 40-year-old nurse develops fatigue, jaundice and elevated hepatic transaminases three months after "
           "a needlestick injury at work. Which infection is most likely?",
  options={"A": "Hepatitis B", "B": "Hepatitis A", "C": "Hepatitis E", "D": "Cytomegalovirus infection"},
  answer_idx="A",
  q=[("fatigue", "Fatigue"), ("jaundice", "Jaundice"), ("elevated hepatic transaminases", "Elevated hepatic transaminase"),
     ("needlestick injury", "Needlestick Injuries")],
  a=[("Hepatitis B", "hepatitis B")])

# brand name -> drug target
Q(phrasing="synonym",
  question="A 30-year-old man with Crohn's disease is started on Humira. What is the molecular target of this drug?",
  options={"A": "Interleukin-5", "B": "Tumour necrosis factor", "C": "Immunoglobulin E", "D": "Integrin alpha-4"},
  answer_idx="B",
  q=[("Crohn's disease", "Crohn disease"), ("Humira", "Adalimumab")],
  a=[("Tumour necrosis factor", "TNF")])

# drug target -> anatomy (expression)
Q(phrasing="kg_names",
  question="A 70-year-old man with heart failure takes furosemide, which inhibits the transporter encoded by SLC12A1. "
           "In which organ is this transporter mainly expressed?",
  options={"A": "Liver", "B": "Lung", "C": "Kidney", "D": "Heart"}, answer_idx="C",
  q=[("heart failure", "heart failure"), ("furosemide", "Furosemide"), ("SLC12A1", "SLC12A1")],
  a=[("Kidney", "kidney")])

# lay phenotypes -> disease -> drug
Q(phrasing="lay",
  question="A 6-year-old boy who eats no fruit or vegetables has bleeding gums, bruises easily and has cuts that "
           "heal slowly. Which treatment does he need?",
  options={"A": "Cholecalciferol", "B": "Ascorbic acid", "C": "Thiamine", "D": "Ferrous sulfate"}, answer_idx="B",
  q=[("bleeding gums", "Gingival bleeding"), ("bruises easily", "Bruising susceptibility"),
     ("cuts that heal slowly", "Poor wound healing")],
  a=[("Ascorbic acid", "Ascorbic acid")])

# drug target -> pathway
Q(phrasing="kg_names",
  question="Emicizumab, used for prophylaxis in hemophilia A, brings together F9 and F10. "
           "Which Reactome pathway contains both of these proteins?",
  options={"A": "Intrinsic Pathway of Fibrin Clot Formation", "B": "Neutrophil degranulation",
           "C": "Catecholamine biosynthesis", "D": "Muscarinic acetylcholine receptors"}, answer_idx="A",
  q=[("Emicizumab", "Emicizumab"), ("hemophilia A", "hemophilia A"), ("F9", "F9"), ("F10", "F10")],
  a=[("Intrinsic Pathway of Fibrin Clot Formation", "Intrinsic Pathway of Fibrin Clot Formation")])

# British abbreviation -> drug indication
Q(phrasing="synonym",
  question="A 50-year-old man with GORD complains of heartburn after meals and a cough at night. "
           "Which medication treats the underlying condition?",
  options={"A": "Fluconazole", "B": "Salbutamol", "C": "Omeprazole", "D": "Lisinopril"}, answer_idx="C",
  q=[("GORD", "gastroesophageal reflux disease"), ("heartburn", "Heartburn"), ("cough", "Cough")],
  a=[("Omeprazole", "Omeprazole")])

# exposure + phenotypes -> disease gene
Q(phrasing="kg_names",
  question="A 67-year-old man with a 50-pack-year history of smoking has progressive dyspnea, and CT of the chest "
           "shows emphysema. Variants in which gene are associated with his condition?",
  options={"A": "MMP12", "B": "CFTR", "C": "BRAF", "D": "NOD2"}, answer_idx="A",
  q=[("smoking", "Smoking"), ("dyspnea", "Dyspnea"), ("emphysema", "Emphysema")],
  a=[("MMP12", "MMP12")])

# lay phenotypes + disease -> drug
Q(phrasing="lay",
  question="A 66-year-old man with a failing heart has ankle oedema and gets breathless walking up one flight "
           "of stairs. Which loop diuretic will best relieve his fluid overload?",
  options={"A": "Hydrochlorothiazide", "B": "Furosemide", "C": "Acetazolamide", "D": "Mannitol"}, answer_idx="B",
  q=[("failing heart", "heart failure"), ("oedema", "Edema"), ("breathless", "Dyspnea")],
  a=[("Furosemide", "Furosemide")])

# drug side effects
Q(phrasing="kg_names",
  question="A 72-year-old man who takes amiodarone for atrial fibrillation develops a dry cough and worsening dyspnea, "
           "and CT shows pulmonary fibrosis. Which other adverse effect of this drug should be screened for?",
  options={"A": "Hyperkalemia", "B": "Agranulocytosis", "C": "Hypothyroidism", "D": "Gynecomastia"}, answer_idx="C",
  q=[("amiodarone", "Amiodarone"), ("atrial fibrillation", AF), ("cough", "Cough"), ("dyspnea", "Dyspnea"),
     ("pulmonary fibrosis", "Pulmonary fibrosis")],
  a=[("Hypothyroidism", "Hypothyroidism")])

# British spelling, disease -> drug, gene synonym
Q(phrasing="synonym",
  question="A 19-year-old man with mild haemophilia A has had several episodes of haemarthrosis. Which vasopressin "
           "analogue can raise his factor VIII level before a dental extraction?",
  options={"A": "Tranexamic acid", "B": "Desmopressin", "C": "Phytomenadione", "D": "Protamine sulfate"},
  answer_idx="B",
  q=[("haemophilia A", "hemophilia A"), ("haemarthrosis", "Hemarthrosis"), ("factor VIII", "F8")],
  a=[("Desmopressin", "Desmopressin")])

# phenotypes -> disease -> gene
Q(phrasing="kg_names",
  question="A 14-year-old boy has progressive ataxia, telangiectasia on the conjunctivae and recurrent respiratory "
           "infections. Which gene is most likely mutated?",
  options={"A": "WAS", "B": "TBX1", "C": "ATM", "D": "BTK"}, answer_idx="C",
  q=[("ataxia", "Ataxia"), ("telangiectasia", "Telangiectasia"),
     ("recurrent respiratory infections", "Recurrent respiratory infections")],
  a=[("ATM", "ATM")])

# lay phenotypes -> disease -> gene
Q(phrasing="lay",
  question="A 2-year-old boy has eczema, a low platelet count and keeps getting bacterial infections. "
           "His maternal uncle had the same illness. Which gene is most likely mutated?",
  options={"A": "BTK", "B": "WAS", "C": "ATM", "D": "CD19"}, answer_idx="B",
  q=[("eczema", "Eczema"), ("low platelet count", "Thrombocytopenia"),
     ("keeps getting bacterial infections", "Recurrent bacterial infections")],
  a=[("WAS", "WAS")])

# drug -> target (enzyme), pathway
Q(phrasing="kg_names",
  question="Metyrosine is given to a patient with pheochromocytoma to reduce catecholamine biosynthesis. "
           "Which enzyme does it inhibit?",
  options={"A": "PNMT", "B": "TH", "C": "DDC", "D": "MAOA"}, answer_idx="B",
  q=[("Metyrosine", "Metyrosine"), ("pheochromocytoma", PHEO), ("catecholamine biosynthesis", "Catecholamine biosynthesis")],
  a=[("TH", "TH")])

# contraindication
Q(phrasing="kg_names",
  question="A 76-year-old woman with sick sinus syndrome has episodes of dizziness and syncope while awaiting a "
           "pacemaker. Which of these drugs is contraindicated?",
  options={"A": "Apixaban", "B": "Atorvastatin", "C": "Omeprazole", "D": "Verapamil"}, answer_idx="D",
  q=[("sick sinus syndrome", "sick sinus syndrome"), ("dizziness", "Dizziness"), ("syncope", "Syncope")],
  a=[("Verapamil", "Verapamil")])

# brand name, British spelling -> drug target
Q(phrasing="synonym",
  question="A 48-year-old woman with type 2 diabetes starts Glucophage and has nausea and diarrhoea in the first "
           "weeks. Which protein kinase subunit is listed as a target of this drug?",
  options={"A": "DPP4", "B": "SLC5A2", "C": "PRKAB1", "D": "PPARG"}, answer_idx="C",
  q=[("type 2 diabetes", "type 2 diabetes mellitus"), ("Glucophage", "Metformin"), ("nausea", "Nausea"),
     ("diarrhoea", "Diarrhea")],
  a=[("PRKAB1", "PRKAB1")])

# phenotypes + anatomy + protein -> disease -> drug
Q(phrasing="synonym",
  question="A 32-year-old man has hematuria and proteinuria a few days after a sore throat. Kidney biopsy shows "
           "mesangial IgA deposits. Which drug is approved to reduce proteinuria in this disease?",
  options={"A": "Sevelamer", "B": "Budesonide", "C": "Rituximab", "D": "Cinacalcet"}, answer_idx="B",
  q=[("hematuria", "Hematuria"), ("proteinuria", "Proteinuria"), ("Kidney", "kidney"), ("IgA", "IGHA1")],
  a=[("Budesonide", "Budesonide")])

# disease + gene -> interacting protein
Q(phrasing="kg_names",
  question="A boy with X-linked agammaglobulinemia carries a loss-of-function variant in BTK. Which adaptor protein "
           "binds directly to BTK?",
  options={"A": "CD81", "B": "TNFRSF1A", "C": "KL", "D": "BLNK"}, answer_idx="D",
  q=[("X-linked agammaglobulinemia", "X-linked agammaglobulinemia"), ("BTK", "BTK")],
  a=[("BLNK", "BLNK")])

# exposure (lay) + lay symptoms -> disease
Q(phrasing="lay",
  question="After a weekend of heavy drinking, a 45-year-old man feels his heart fluttering and becomes dizzy. "
           "His pulse is irregular. What is the most likely rhythm?",
  options={"A": "Ventricular tachycardia", "B": "Sinus bradycardia", "C": "Atrial fibrillation",
           "D": "Brugada syndrome"}, answer_idx="C",
  q=[("heavy drinking", "Alcohol Drinking"), ("heart fluttering", "Palpitations"), ("dizzy", "Dizziness")],
  a=[("Atrial fibrillation", AF)])

# gene -> GO process
Q(phrasing="kg_names",
  question="A child with oculocutaneous albinism type 1 has nystagmus. "
           "The mutated TYR gene normally takes part in which biological process?",
  options={"A": "Catecholamine biosynthesis", "B": "Melanin biosynthetic process", "C": "Blood coagulation",
           "D": "Calcium ion homeostasis"}, answer_idx="B",
  q=[("oculocutaneous albinism type 1", "oculocutaneous albinism type 1"), ("nystagmus", "Nystagmus"), ("TYR", "TYR")],
  a=[("Melanin biosynthetic process", "melanin biosynthetic process")])

# disease + phenotypes -> drug
Q(phrasing="kg_names",
  question="A 30-year-old woman with systemic lupus erythematosus has a skin rash on her cheeks and arthralgia of "
           "the hands. Which antimalarial drug is recommended long term for her disease?",
  options={"A": "Primaquine", "B": "Mefloquine", "C": "Hydroxychloroquine", "D": "Quinine"}, answer_idx="C",
  q=[("systemic lupus erythematosus", "systemic lupus erythematosus"), ("skin rash", "Skin rash"),
     ("arthralgia", "Arthralgia")],
  a=[("Hydroxychloroquine", "Hydroxychloroquine")])

# phenotypes -> disease -> drug
Q(phrasing="kg_names",
  question="A 68-year-old woman has morning stiffness of the shoulders and hips, arthralgia and an elevated "
           "erythrocyte sedimentation rate. Which drug usually brings rapid relief?",
  options={"A": "Allopurinol", "B": "Prednisone", "C": "Colchicine", "D": "Hydroxychloroquine"}, answer_idx="B",
  q=[("arthralgia", "Arthralgia"), ("elevated erythrocyte sedimentation rate", "Elevated erythrocyte sedimentation rate")],
  a=[("Prednisone", "Prednisone")])

# lay phenotypes -> disease -> drug
Q(phrasing="lay",
  question="A 2-year-old girl who is rarely taken outdoors has bowed legs, bone pain and low blood calcium. "
           "Which supplement is indicated?",
  options={"A": "Ascorbic acid", "B": "Cholecalciferol", "C": "Thiamine", "D": "Folic acid"}, answer_idx="B",
  q=[("bone pain", "Bone pain"), ("low blood calcium", "Hypocalcemia")],
  a=[("Cholecalciferol", "Cholecalciferol")])

# brand name -> drug side effect (interaction)
Q(phrasing="synonym",
  question="A 70-year-old man on Coumadin for atrial fibrillation is started on amiodarone, which raises the "
           "level of his anticoagulant. Which complication is he now most at risk of?",
  options={"A": "Hyperkalemia", "B": "Abnormal bleeding", "C": "Angioedema", "D": "Agranulocytosis"}, answer_idx="B",
  q=[("Coumadin", "Warfarin"), ("atrial fibrillation", AF), ("amiodarone", "Amiodarone")],
  a=[("Abnormal bleeding", "Abnormal bleeding")])

# phenotypes -> disease
Q(phrasing="kg_names",
  question="A 22-year-old woman has abdominal pain, diarrhea and erythema nodosum. Ileal biopsy shows transmural "
           "intestinal inflammation with noncaseating granulomas. What is the most likely diagnosis?",
  options={"A": "Ulcerative colitis", "B": "Celiac disease", "C": "Crohn disease", "D": "Intestinal tuberculosis"},
  answer_idx="C",
  q=[("abdominal pain", "Abdominal pain"), ("diarrhea", "Diarrhea"), ("erythema nodosum", "Erythema nodosum"),
     ("transmural intestinal inflammation", "Transmural intestinal inflammation"),
     ("noncaseating granulomas", "Noncaseating granulomas")],
  a=[("Crohn disease", "Crohn disease")])

# lay phenotypes + gene -> drug
Q(phrasing="lay",
  question="A 45-year-old man has silvery, scaly patches on his elbows and knees and small pits in his fingernails. "
           "He is started on a monoclonal antibody against IL12B. Which drug is it?",
  options={"A": "Etanercept", "B": "Omalizumab", "C": "Mepolizumab", "D": "Ustekinumab"}, answer_idx="D",
  q=[("silvery, scaly patches on his elbows and knees", "Silvery plaques on extensor surfaces"),
     ("small pits in his fingernails", "Nail pits"), ("IL12B", "IL12B")],
  a=[("Ustekinumab", "Ustekinumab")])

# drug + disease + phenotype + gene -> GO molecular function
Q(phrasing="kg_names",
  question="Alpha-1-proteinase inhibitor is infused in patients with emphysema caused by alpha 1-antitrypsin "
           "deficiency. Which molecular function does the SERPINA1 protein normally provide?",
  options={"A": "Serine-type endopeptidase activity", "B": "Serine-type endopeptidase inhibitor activity",
           "C": "G protein-coupled acetylcholine receptor activity", "D": "Metalloendopeptidase activity"},
  answer_idx="B",
  q=[("Alpha-1-proteinase inhibitor", "Alpha-1-proteinase inhibitor"), ("emphysema", "Emphysema"),
     ("alpha 1-antitrypsin deficiency", "alpha 1-antitrypsin deficiency"), ("SERPINA1", "SERPINA1")],
  a=[("Serine-type endopeptidase inhibitor activity", "serine-type endopeptidase inhibitor activity")])

# lay phenotypes -> disease
Q(phrasing="lay",
  question="A 35-year-old woman's fingers turn white and then blue in the cold. She also has trouble swallowing "
           "solid food and her fingers have become puffy and tight. What is the most likely diagnosis?",
  options={"A": "Dermatomyositis", "B": "Systemic sclerosis", "C": "Polymyositis", "D": "Systemic lupus erythematosus"},
  answer_idx="B",
  q=[("fingers turn white and then blue in the cold", "Raynaud phenomenon"), ("trouble swallowing", "Dysphagia")],
  a=[("Systemic sclerosis", "systemic sclerosis")])

# disease + drug -> adverse effect
Q(phrasing="kg_names",
  question="A 27-year-old man with schizophrenia that did not respond to two antipsychotics is started on "
           "clozapine. Which adverse effect makes regular white cell counts mandatory?",
  options={"A": "Hyperkalemia", "B": "Hypothyroidism", "C": "Pulmonary fibrosis", "D": "Agranulocytosis"},
  answer_idx="D",
  q=[("schizophrenia", "schizophrenia"), ("clozapine", "Clozapine")],
  a=[("Agranulocytosis", "Agranulocytosis")])

# disease + drug + protein synonym -> anatomy
Q(phrasing="synonym",
  question="A 58-year-old man on dialysis for chronic kidney disease has secondary hyperparathyroidism and is given "
           "cinacalcet, which acts on the calcium-sensing receptor. In which gland is this receptor mainly expressed?",
  options={"A": "Thyroid gland", "B": "Adrenal gland", "C": "Parathyroid gland", "D": "Pituitary gland"},
  answer_idx="C",
  q=[("chronic kidney disease", CKD), ("secondary hyperparathyroidism", "secondary hyperparathyroidism of renal origin"),
     ("cinacalcet", "Cinacalcet"), ("calcium-sensing receptor", "CASR")],
  a=[("Parathyroid gland", "parathyroid gland")])

# phenotype + drug -> adverse effect
Q(phrasing="kg_names",
  question="A 52-year-old man with hypertension is started on hydrochlorothiazide. Which change in serum calcium "
           "may this drug cause?",
  options={"A": "Hypocalcemia", "B": "Hypercalcemia", "C": "Hyperphosphatemia", "D": "Hypermagnesemia"},
  answer_idx="B",
  q=[("hypertension", "Hypertension"), ("hydrochlorothiazide", "Hydrochlorothiazide")],
  a=[("Hypercalcemia", "Hypercalcemia")])

# lay + synonym phenotypes -> syndrome gene
Q(phrasing="lay",
  question="A 35-year-old man has attacks of headache, sweating and palpitations with hypertensive crises. "
           "His father had medullary thyroid cancer. A germline mutation in which gene is most likely?",
  options={"A": "VHL", "B": "RET", "C": "NF1", "D": "MEN1"}, answer_idx="B",
  q=[("headache", "Headache"), ("sweating", "Hyperhidrosis"), ("palpitations", "Palpitations"),
     ("hypertensive crises", "Hypertensive crisis"), ("medullary thyroid cancer", "Medullary thyroid carcinoma")],
  a=[("RET", "RET")])

# phenotypes -> disease -> gene
Q(phrasing="kg_names",
  question="A newborn has seizures due to hypocalcemia and later develops recurrent viral infections. A 22q11.2 "
           "deletion is found. Which gene in the deleted region is most implicated?",
  options={"A": "ATM", "B": "WAS", "C": "TBX1", "D": "BTK"}, answer_idx="C",
  q=[("hypocalcemia", "Hypocalcemia"), ("recurrent viral infections", "Recurrent viral infections")],
  a=[("TBX1", "TBX1")])

# drug -> target
Q(phrasing="kg_names",
  question="Montelukast is added for a 10-year-old with asthma who has wheezing at night. Which receptor does it block?",
  options={"A": "ADRB2", "B": "CHRM3", "C": "CYSLTR1", "D": "HRH1"}, answer_idx="C",
  q=[("Montelukast", "Montelukast"), ("asthma", "asthma"), ("wheezing", "Wheezing")],
  a=[("CYSLTR1", "CYSLTR1")])

# brand name -> target (protein full name)
Q(phrasing="synonym",
  question="A 40-year-old woman with severe asthma and marked eosinophilia is started on Nucala. "
           "Which cytokine does this antibody neutralise?",
  options={"A": "Interleukin-4", "B": "Interleukin-5", "C": "Interleukin-13", "D": "Immunoglobulin E"},
  answer_idx="B",
  q=[("asthma", "asthma"), ("eosinophilia", "Eosinophilia"), ("Nucala", "Mepolizumab")],
  a=[("Interleukin-5", "IL5")])

# genes -> anatomy (expression)
Q(phrasing="kg_names",
  question="Variants near PITX2 and in NPPA are associated with atrial fibrillation. In which chamber are both genes "
           "expressed?",
  options={"A": "Left cardiac atrium", "B": "Right cardiac atrium", "C": "Left ventricle", "D": "Right ventricle"},
  answer_idx="A",
  q=[("PITX2", "PITX2"), ("NPPA", "NPPA"), ("atrial fibrillation", AF)],
  a=[("Left cardiac atrium", "left cardiac atrium")])

# disease + targets -> drug
Q(phrasing="kg_names",
  question="A 26-year-old woman with vitiligo on her face asks about a cream that inhibits JAK1 and JAK2. "
           "Which drug is approved for this use?",
  options={"A": "Tacrolimus", "B": "Ruxolitinib", "C": "Hydroquinone", "D": "Calcipotriol"}, answer_idx="B",
  q=[("vitiligo", "vitiligo"), ("JAK1", "JAK1"), ("JAK2", "JAK2")],
  a=[("Ruxolitinib", "Ruxolitinib")])

# lay exposure + lay symptoms -> disease
Q(phrasing="lay",
  question="A 62-year-old man who has smoked a pack a day for 40 years gets short of breath on exertion and has a "
           "daily cough with phlegm and some wheeze. Spirometry shows airflow obstruction that does not reverse "
           "with a bronchodilator. What is the diagnosis?",
  options={"A": "Asthma", "B": "Chronic obstructive pulmonary disease", "C": "Heart failure",
           "D": "Pneumococcal pneumonia"}, answer_idx="B",
  q=[("smoked", "Smoking"), ("short of breath", "Dyspnea"), ("cough", "Cough"), ("wheeze", "Wheezing")],
  a=[("Chronic obstructive pulmonary disease", "chronic obstructive pulmonary disease")])

# phenotype -> disease -> gene
Q(phrasing="kg_names",
  question="A 20-year-old woman has recurrent episodes of angioedema without hives, one of them after dental work; "
           "her mother has the same problem. Which gene is most likely mutated?",
  options={"A": "SERPINA1", "B": "SERPING1", "C": "F8", "D": "ACE"}, answer_idx="B",
  q=[("angioedema", "Angioedema")],
  a=[("SERPING1", "SERPING1")])

# abbreviation -> disease gene
Q(phrasing="synonym",
  question="A 17-year-old footballer has syncope during a match. Echocardiography shows HOCM with asymmetric septal "
           "hypertrophy. Which gene is most likely mutated?",
  options={"A": "SCN5A", "B": "KCNQ1", "C": "HCN4", "D": "MYH7"}, answer_idx="D",
  q=[("syncope", "Syncope"), ("HOCM", "hypertrophic cardiomyopathy")],
  a=[("MYH7", "MYH7")])

# abbreviation + lay adverse effect -> drug
Q(phrasing="lay",
  question="A 66-year-old man with COPD who recently started a new inhaler complains of a dry mouth. "
           "Which of his inhaled drugs most likely causes this?",
  options={"A": "Salbutamol", "B": "Ipratropium", "C": "Budesonide", "D": "Salmeterol"}, answer_idx="B",
  q=[("COPD", "chronic obstructive pulmonary disease"), ("dry mouth", "Xerostomia")],
  a=[("Ipratropium", "Ipratropium")])

# drug + phenotype -> disease
Q(phrasing="kg_names",
  question="A 19-year-old woman took a large overdose of acetaminophen. Three days later she has jaundice, "
           "confusion and a markedly raised INR. What has developed?",
  options={"A": "Hepatitis B", "B": "Acute liver failure", "C": "Gilbert syndrome", "D": "Alpha 1-antitrypsin deficiency"},
  answer_idx="B",
  q=[("acetaminophen", "Acetaminophen"), ("jaundice", "Jaundice")],
  a=[("Acute liver failure", "acute liver failure")])

# disease + phenotype -> drug
Q(phrasing="kg_names",
  question="A 63-year-old woman with chronic kidney disease has hyperphosphatemia on routine laboratory tests. "
           "Which phosphate binder is appropriate?",
  options={"A": "Cinacalcet", "B": "Calcitriol", "C": "Sevelamer", "D": "Furosemide"}, answer_idx="C",
  q=[("chronic kidney disease", CKD), ("hyperphosphatemia", "Hyperphosphatemia")],
  a=[("Sevelamer", "Sevelamer")])

# lay adverse effects -> drug
Q(phrasing="lay",
  question="A 40-year-old man on long-term treatment for bipolar disorder develops an underactive thyroid and a "
           "psoriasis-like rash. Which drug is most likely responsible?",
  options={"A": "Valproate", "B": "Lamotrigine", "C": "Lithium", "D": "Quetiapine"}, answer_idx="C",
  q=[("underactive thyroid", "Hypothyroidism"), ("psoriasis-like rash", "Psoriasiform dermatitis")],
  a=[("Lithium", "Lithium")])

# British spellings, receptor synonym -> drug
Q(phrasing="synonym",
  question="A 34-year-old man has low libido and gynaecomastia and is diagnosed with hyperprolactinaemia from a "
           "small adenoma in the pituitary gland. Which dopamine D2 receptor agonist is a standard treatment?",
  options={"A": "Haloperidol", "B": "Bromocriptine", "C": "Metoclopramide", "D": "Risperidone"}, answer_idx="B",
  q=[("gynaecomastia", "Gynecomastia"), ("hyperprolactinaemia", HYPERPRL), ("pituitary gland", "pituitary gland"),
     ("dopamine D2 receptor", "DRD2")],
  a=[("Bromocriptine", "Bromocriptine")])

# phenotypes (one lay) -> disease -> drug
Q(phrasing="lay",
  question="A 20-year-old man has fine scaly patches on his upper trunk, some showing hypopigmentation and others "
           "darker than the surrounding skin. A KOH preparation shows short hyphae and yeast cells. "
           "Which antifungal is used?",
  options={"A": "Acyclovir", "B": "Ketoconazole", "C": "Mupirocin", "D": "Hydroquinone"}, answer_idx="B",
  q=[("hypopigmentation", "Hypopigmentation of the skin"),
     ("darker than the surrounding skin", "Hyperpigmentation of the skin")],
  a=[("Ketoconazole", "Ketoconazole")])

# phenotypes -> disease -> drug (British spelling of a concept without a node)
Q(phrasing="kg_names",
  question="A 45-year-old man receiving chemotherapy has odynophagia and dysphagia, and endoscopy shows white "
           "plaques lining the oesophagus. Which drug is indicated?",
  options={"A": "Omeprazole", "B": "Fluconazole", "C": "Acyclovir", "D": "Metronidazole"}, answer_idx="B",
  q=[("odynophagia", "Odynophagia"), ("dysphagia", "Dysphagia")],
  a=[("Fluconazole", "Fluconazole")])

# phenotype -> disease
Q(phrasing="kg_names",
  question="A 2-year-old boy has painless hematochezia. A technetium scan shows ectopic gastric mucosa in the "
           "distal ileum. What is the most likely diagnosis?",
  options={"A": "Intussusception", "B": "Meckel diverticulum", "C": "Ulcerative colitis", "D": "Juvenile polyp"},
  answer_idx="B",
  q=[("hematochezia", "Hematochezia")],
  a=[("Meckel diverticulum", "Meckel diverticulum")])

# phenotype + disease -> drug
Q(phrasing="kg_names",
  question="A 15-year-old has acanthosis nigricans on the neck and is diagnosed with type 2 diabetes mellitus. "
           "Which oral drug is first-line?",
  options={"A": "Glipizide", "B": "Metformin", "C": "Sitagliptin", "D": "Pioglitazone"}, answer_idx="B",
  q=[("acanthosis nigricans", "Acanthosis nigricans"), ("type 2 diabetes mellitus", "type 2 diabetes mellitus")],
  a=[("Metformin", "Metformin")])

# anatomy -> gene (expression)
Q(phrasing="kg_names",
  question="Which gene expressed in the adrenal medulla encodes the enzyme that converts norepinephrine to "
           "epinephrine?",
  options={"A": "TH", "B": "DBH", "C": "PNMT", "D": "COMT"}, answer_idx="C",
  q=[("adrenal medulla", "adrenal medulla")],
  a=[("PNMT", "PNMT")])

# drug + contraindicated disease -> target
Q(phrasing="kg_names",
  question="Propranolol is contraindicated in a 30-year-old woman with asthma because it also blocks which receptor?",
  options={"A": "ADRB1", "B": "ADRB2", "C": "ADRA1A", "D": "CHRM3"}, answer_idx="B",
  q=[("Propranolol", "Propranolol"), ("asthma", "asthma")],
  a=[("ADRB2", "ADRB2")])

# disease + phenotypes -> drug
Q(phrasing="kg_names",
  question="A 28-year-old woman with mild ulcerative colitis has hematochezia and tenesmus. Which aminosalicylate "
           "is first-line to induce remission?",
  options={"A": "Mesalazine", "B": "Metronidazole", "C": "Loperamide", "D": "Omeprazole"}, answer_idx="A",
  q=[("ulcerative colitis", "ulcerative colitis"), ("hematochezia", "Hematochezia"), ("tenesmus", "Tenesmus")],
  a=[("Mesalazine", "Mesalazine")])

# anatomy + disease -> gene
Q(phrasing="kg_names",
  question="Which transcription factor gene, expressed in the skin epidermis, controls melanocyte development and "
           "is associated with melanoma?",
  options={"A": "CDX2", "B": "MITF", "C": "TBX1", "D": "PITX2"}, answer_idx="B",
  q=[("skin epidermis", "skin epidermis"), ("melanoma", "melanoma")],
  a=[("MITF", "MITF")])

# diseases + drug -> target
Q(phrasing="kg_names",
  question="A 50-year-old man with psoriasis and psoriatic arthritis is started on apremilast. "
           "Which enzyme does it inhibit?",
  options={"A": "DHFR", "B": "PDE4B", "C": "JAK1", "D": "VKORC1"}, answer_idx="B",
  q=[("psoriasis", "psoriasis"), ("psoriatic arthritis", "psoriatic arthritis"), ("apremilast", "Apremilast")],
  a=[("PDE4B", "PDE4B")])


# --------------------------------------------------------------------------------------------
# Demo questions (qa_sample.jsonl), keyed by the first words of the question
# --------------------------------------------------------------------------------------------

DEMO: dict[str, dict] = {
    "A 30-year-old man has patchy depigmented skin": dict(
        phrasing="synonym",
        q=[("depigmented skin", "Hypopigmentation of the skin"), ("epidermis", "skin epidermis")],
        a=[("Vitiligo", "vitiligo")]),
    "An older man regurgitates undigested food": dict(
        phrasing="lay",
        q=[("regurgitates", "Regurgitation"), ("bad breath", "Halitosis")],
        a=[("Zenker diverticulum", "Zenker diverticulum")]),
    "A child with asthma needs an inhaled drug": dict(
        phrasing="synonym",
        q=[("asthma", "asthma"), ("muscarinic receptors", "Muscarinic acetylcholine receptors"), ("bronchi", "bronchus")],
        a=[("Ipratropium", "Ipratropium")]),
    "A patient taking captopril is started on triamterene": dict(
        phrasing="kg_names",
        q=[("captopril", "Captopril"), ("triamterene", "Triamterene")],
        a=[("Hyperkalemia", "Hyperkalemia")]),
    "A young man treated with risperidone": dict(
        phrasing="lay",
        q=[("risperidone", "Risperidone"), ("schizophrenia", "schizophrenia"), ("breast enlargement", "Gynecomastia")],
        a=[("Prolactin", "PRL")]),
    # "alpha receptors": a receptor class with no single node (ADRA1A and ADRA2A are both nodes)
    "Before surgery for a pheochromocytoma": dict(
        phrasing="kg_names",
        q=[("pheochromocytoma", PHEO)],
        a=[("Phenoxybenzamine", "Phenoxybenzamine")]),
    "A woman has weakness of the shoulder and hip muscles": dict(
        phrasing="synonym",
        q=[("weakness of the shoulder and hip muscles", "Proximal muscle weakness"),
           ("raised creatine kinase", "Elevated circulating creatine kinase concentration"),
           ("CD8", "CD8A"), ("muscle", "skeletal muscle tissue")],
        a=[("Polymyositis", "polymyositis")]),
    "A patient has bloody diarrhea and tenesmus": dict(
        phrasing="synonym",
        q=[("bloody diarrhea", "Bloody diarrhea"), ("tenesmus", "Tenesmus"),
           ("continuous inflammation", "Continuous mucosal inflammation of the colon"), ("rectum", "rectum")],
        a=[("Ulcerative colitis", "ulcerative colitis")]),
    "In alpha 1-antitrypsin deficiency": dict(
        phrasing="synonym",
        q=[("alpha 1-antitrypsin deficiency", "alpha 1-antitrypsin deficiency"), ("lung", "lung")],
        a=[("Elastase", "ELANE")]),
    "A man with pitted nails and onycholysis": dict(
        phrasing="synonym",
        q=[("pitted nails", "Nail pits"), ("onycholysis", "Onycholysis")],
        a=[("Silvery plaques on extensor surfaces", "Silvery plaques on extensor surfaces")]),
    "A boy with bleeding into his joints": dict(
        phrasing="lay",
        q=[("bleeding into his joints", "Hemarthrosis"),
           ("prolonged partial thromboplastin time", "Prolonged partial thromboplastin time")],
        a=[("Factor VIII", "F8")]),
    "A traveller develops jaundice and fever": dict(
        phrasing="kg_names",
        q=[("jaundice", "Jaundice"), ("fever", "Fever"), ("shellfish", "Shellfish")],
        a=[("Hepatitis A", "hepatitis A")]),
    "A patient with chronic kidney disease from IgA nephropathy": dict(
        phrasing="synonym",
        q=[("chronic kidney disease", CKD), ("IgA nephropathy", "IgA nephropathy"), ("bone pain", "Bone pain")],
        a=[("Parathyroid hormone", "PTH")]),
    # "repeated pneumococcal pneumonia and otitis media": the literal diseases are linked
    "A boy has repeated pneumococcal pneumonia": dict(
        phrasing="synonym",
        q=[("pneumococcal pneumonia", "pneumococcal pneumonia"), ("otitis media", "otitis media"),
           ("no B cells", "Absent circulating B cells")],
        a=[("BTK", "BTK")]),
    "A 70-year-old has waxy, stuck-on brown lesions": dict(
        phrasing="lay",
        q=[("brown lesions", "Hyperpigmentation of the skin")],
        a=[("Seborrheic keratosis", "seborrheic keratosis")]),
    # "irregularly irregular pulse": no node for an irregular pulse
    "An irregularly irregular pulse": dict(
        phrasing="synonym",
        q=[("left atrium", "left cardiac atrium")],
        a=[("Atrial fibrillation", AF)]),
}


# --------------------------------------------------------------------------------------------
# Machinery
# --------------------------------------------------------------------------------------------

def load_kg(path: Path = KG_CSV):
    """Nodes ``{index: (type, name)}`` and undirected adjacency ``{index: set(index)}``."""
    nodes: dict[int, tuple[str, str]] = {}
    adj: dict[int, set[int]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            x, y = int(row["x_index"]), int(row["y_index"])
            nodes[x] = (row["x_type"], row["x_name"])
            nodes[y] = (row["y_type"], row["y_name"])
            adj.setdefault(x, set()).add(y)
            adj.setdefault(y, set()).add(x)
    return nodes, adj


class Resolver:
    def __init__(self, nodes):
        self.nodes = nodes
        self.by_fold: dict[str, list[int]] = {}
        for idx, (_, name) in sorted(nodes.items()):
            self.by_fold.setdefault(name.casefold(), []).append(idx)

    def __call__(self, ref) -> int:
        name, typ = (ref, None) if isinstance(ref, str) else ref
        hits = [i for i in self.by_fold.get(name.casefold(), []) if self.nodes[i][1] == name]
        if not hits:
            raise ValueError(f"unknown node name {name!r}")
        shared = self.by_fold[name.casefold()]
        if typ is None:
            if len(shared) > 1:
                raise ValueError(f"node name {name!r} is shared by {len(shared)} nodes: give a type")
            return hits[0]
        typed = [i for i in hits if self.nodes[i][0] == typ]
        if len(typed) != 1:
            raise ValueError(f"no single node {name!r} of type {typ!r}")
        return typed[0]


def norm(text: str) -> str:
    """Case, plural, hyphen and possessive folding, for the kg_names check."""
    words = re.sub(r"'s\b", "", text.casefold()).replace("-", " ").split()
    words = [w[:-3] + "y" if w.endswith("ies") else w for w in words]
    return " ".join(w.rstrip("s") if len(w) > 3 else w for w in words)


def bfs_path(adj, sources: list[int], targets: list[int]) -> list[int]:
    """Shortest path from some source to some target; ties: source order, then target order."""
    best = None
    for si, s in enumerate(sources):
        parent = {s: None}
        dist = {s: 0}
        queue = deque([s])
        while queue:
            u = queue.popleft()
            if dist[u] >= MAX_HOPS:
                continue
            for v in sorted(adj.get(u, ())):
                if v not in dist:
                    dist[v] = dist[u] + 1
                    parent[v] = u
                    queue.append(v)
        for ti, t in enumerate(targets):
            if t in dist:
                key = (dist[t], si, ti)
                if best is None or key < best[0]:
                    path = [t]
                    while parent[path[-1]] is not None:
                        path.append(parent[path[-1]])
                    best = (key, path[::-1])
    return best[1] if best else []


def build_row(spec: dict, nodes, adj, resolve) -> dict:
    where = spec["question"][:60]
    if spec["phrasing"] not in PHRASINGS:
        raise ValueError(f"{where}: bad phrasing {spec['phrasing']!r}")
    options = spec["options"]
    if spec["answer_idx"] not in options:
        raise ValueError(f"{where}: answer_idx not among options")
    answer = options[spec["answer_idx"]]
    gold = {}
    for role, text, pairs in (("question", spec["question"], spec["q"]), ("answer", answer, spec["a"])):
        items, seen = [], set()
        for surface, ref in pairs:
            if surface not in text:
                raise ValueError(f"{where}: surface {surface!r} not in the {role} text")
            idx = resolve(ref)
            if idx in seen:
                raise ValueError(f"{where}: node {nodes[idx][1]!r} twice in {role}")
            seen.add(idx)
            items.append({"surface": surface, "node_id": idx, "node_name": nodes[idx][1]})
        gold[role] = items
    if not gold["answer"]:
        raise ValueError(f"{where}: no answer node")
    all_items = gold["question"] + gold["answer"]
    is_names = all(norm(i["surface"]) == norm(i["node_name"]) for i in all_items)
    if is_names != (spec["phrasing"] == "kg_names"):
        raise ValueError(f"{where}: phrasing {spec['phrasing']!r} but surfaces "
                         + ("all" if is_names else "not all") + " match node names")
    q_ids = [i["node_id"] for i in gold["question"]]
    a_ids = [i["node_id"] for i in gold["answer"]]
    if spec["set"] == "new" and set(q_ids) & set(a_ids):
        raise ValueError(f"{where}: the answer node is also a question node")
    path = bfs_path(adj, q_ids, a_ids)
    if not path and spec["set"] == "new":
        raise ValueError(f"{where}: no path <= {MAX_HOPS} hops from a question node to an answer node")
    return {"set": spec["set"], "question": spec["question"], "options": options, "answer_idx": spec["answer_idx"],
            "answer": answer, "phrasing": spec["phrasing"], "gold": gold, "path": path}


def demo_rows(path: Path = DEMO_QA) -> list[dict]:
    """The valid rows of qa_sample.jsonl (valid JSON, answer_idx among the options), in file order."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(row, dict) or not isinstance(row.get("options"), dict):
                continue
            if row.get("answer_idx") not in row["options"]:
                continue
            rows.append(row)
    return rows


def lint(row: dict, nodes) -> list[str]:
    """Node names found in the stem (word-bounded, case-folded) that no gold surface covers."""
    text = row["question"].casefold()
    spans = []
    for item in row["gold"]["question"]:
        for m in re.finditer(re.escape(item["surface"].casefold()), text):
            spans.append((m.start(), m.end()))
    gold_ids = {i["node_id"] for i in row["gold"]["question"]}
    out = []
    for idx, (_, name) in nodes.items():
        if idx in gold_ids:
            continue
        # gene symbols case-sensitively ("WAS" is not "was")
        hay, needle = (row["question"], name) if name.isupper() else (text, name.casefold())
        for m in re.finditer(r"\b" + re.escape(needle) + r"s?\b", hay):
            if not any(a <= m.start() and m.end() <= b for a, b in spans):
                out.append(f"  {row['question'][:50]!r}: {name!r} ({idx}) at {m.start()}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--lint", action="store_true")
    args = ap.parse_args(argv)

    nodes, adj = load_kg()
    resolve = Resolver(nodes)
    rows = [build_row(spec, nodes, adj, resolve) for spec in NEW]

    used = set()
    for demo in demo_rows():
        keys = [k for k in DEMO if demo["question"].startswith(k)]
        if len(keys) != 1:
            raise ValueError(f"demo question {demo['question'][:60]!r} matches {len(keys)} specs")
        used.add(keys[0])
        spec = dict(DEMO[keys[0]], set="demo", question=demo["question"], options=demo["options"],
                    answer_idx=demo["answer_idx"])
        rows.append(build_row(spec, nodes, adj, resolve))
    if set(DEMO) - used:
        raise ValueError(f"demo specs matching no question: {sorted(set(DEMO) - used)}")
    questions = [r["question"] for r in rows]
    if len(set(questions)) != len(questions):
        raise ValueError("duplicate question text")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    counts: dict[tuple, int] = {}
    links = {"question": 0, "answer": 0}
    for r in rows:
        counts[(r["set"], r["phrasing"])] = counts.get((r["set"], r["phrasing"]), 0) + 1
        for role in links:
            links[role] += len(r["gold"][role])
    print(f"wrote {len(rows)} rows to {args.out}")
    for s in ("new", "demo"):
        n = sum(v for (k, _), v in counts.items() if k == s)
        print(f"  {s}: {n} (" + ", ".join(f"{p} {counts.get((s, p), 0)}" for p in PHRASINGS) + ")")
    print(f"  gold links: question {links['question']}, answer {links['answer']}; "
          f"demo rows without a path: {sum(1 for r in rows if not r['path'])}")
    if args.lint:
        for r in rows:
            for line in lint(r, nodes):
                print("lint:" + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
