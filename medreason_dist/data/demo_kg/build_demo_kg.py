"""Build the curated demo KG (``kg.csv`` in PrimeKG format) from the readable lists below.

Run ``python medreason_dist/data/demo_kg/build_demo_kg.py`` to regenerate ``kg.csv`` and
``PLACEHOLDER_IDS.md`` next to this file. The output is deterministic.

Conventions (PrimeKG's): node indexes are dense integers in declaration order; every edge is
written twice, once per direction, with the same relation and display_relation; MONDO, HPO,
UBERON and GO identifiers are written without prefix and leading zeros (MONDO:0005148 -> 5148);
NCBI gene ids and DrugBank ids as is; Reactome ids with their R-HSA- prefix; CTD exposures
by MeSH descriptor id. An identifier the curator was not sure of is a placeholder
``DEMO-<SOURCE>-<n>``, never a guessed real-looking id; ``PLACEHOLDER_IDS.md`` lists them.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
KG_COLUMNS = ("relation", "display_relation", "x_index", "x_id", "x_type", "x_name", "x_source",
              "y_index", "y_id", "y_type", "y_name", "y_source")

# ---------------------------------------------------------------------------------------------
# Nodes: (name, id or None for a placeholder). Names follow each source's style: MONDO and
# UBERON/GO labels lower case, HPO labels capitalised, HGNC symbols for genes, DrugBank names.

GENES = {  # NCBI Gene ids
    "SERPINA1": "5265", "ELANE": "1991", "MMP12": "4321", "ELN": "2006", "F8": "2157", "F9": "2158",
    "VWF": "7450", "BTK": "695", "BLNK": "29760", "CD19": "930", "CD81": "975", "TYR": "7299",
    "MITF": "4286", "NLRP1": "22861", "PTPN22": "26191", "BRAF": "673", "CHRM1": "1128",
    "CHRM2": "1129", "CHRM3": "1131", "ADRB1": "153", "ADRB2": "154", "ADRA1A": "148", "ADRA2A": "150",
    "ACE": "1636", "AGTR1": "185", "SCNN1A": "6337", "SCNN1B": "6338", "SCNN1G": "6340",
    "NR3C2": "4306", "NR3C1": "2908", "KCNJ1": "3758", "SLC12A1": "6557", "SLC12A3": "6559",
    "DRD2": "1813", "HTR2A": "3356", "PRL": "5617", "RET": "5979", "VHL": "7428", "TH": "7054",
    "PNMT": "5409", "IL23R": "149233", "IL23A": "51561", "IL12B": "3593", "IL17A": "3605",
    "TNF": "7124", "TNFRSF1A": "7132", "HLA-C": "3107", "HLA-A": "3105", "HLA-DRB1": "3123",
    "NOD2": "64127", "CD8A": "925", "PTH": "5741", "PTH1R": "5745", "CASR": "846", "CYP27B1": "1594",
    "VDR": "7421", "FGF23": "8074", "FGFR1": "2260", "KL": "9365", "IGHA1": "3493", "HAVCR1": "26762",
    "KCNH2": "3757", "KCNQ1": "3784", "SCN5A": "6331", "PITX2": "5308", "GJA5": "2702",
    "NPPA": "4878", "KCNA5": "3741", "HCN4": "10021", "MYH7": "4625", "MYBPC3": "4607",
    "FGFR3": "2261", "PIK3CA": "5290", "ATP1A1": "476", "VKORC1": "79001", "F10": "2159",
    "CACNA1C": "775", "DHFR": "1719", "PDE4B": "5142", "JAK1": "3716", "JAK2": "3717",
    "CYSLTR1": "10800", "IGHE": "3497", "IL5": "3567", "IL4": "3565", "IL13": "3596",
    "TBX1": "6899", "ATM": "472", "WAS": "7454", "SERPING1": "710", "PRKAB1": "5564", "CDX2": "1045",
}

DRUGS = {  # DrugBank ids
    "Captopril": "DB01197", "Triamterene": "DB00384", "Risperidone": "DB00734",
    "Phenoxybenzamine": "DB00925", "Ipratropium": "DB00332", "Tiotropium": "DB01409",
    "Salbutamol": "DB01001", "Spironolactone": "DB00421", "Lisinopril": "DB00722",
    "Amiloride": "DB00594", "Propranolol": "DB00571", "Atenolol": "DB00335", "Nifedipine": "DB01115",
    "Prednisone": "DB00635", "Methotrexate": "DB00563", "Mesalazine": "DB00244",
    "Sulfasalazine": "DB00795", "Infliximab": "DB00065", "Adalimumab": "DB00051",
    "Haloperidol": "DB00502", "Clozapine": "DB00363", "Olanzapine": "DB00334", "Warfarin": "DB00682",
    "Apixaban": "DB06605", "Digoxin": "DB00390", "Amiodarone": "DB01118", "Metoprolol": "DB00264",
    "Diltiazem": "DB00343", "Verapamil": "DB00661", "Hydrochlorothiazide": "DB00999",
    "Furosemide": "DB00695", "Losartan": "DB00678", "Cimetidine": "DB00501",
    "Ketoconazole": "DB01026", "Bromocriptine": "DB01200", "Cabergoline": "DB00248",
    "Ustekinumab": "DB05679", "Cyclosporine": "DB00091", "Tacrolimus": "DB00864",
    "Azathioprine": "DB00993", "Hydroxychloroquine": "DB01611", "Budesonide": "DB01222",
    "Montelukast": "DB00471", "Omalizumab": "DB00043", "Mepolizumab": "DB06612",
    "Salmeterol": "DB00938", "Atropine": "DB00572", "Desmopressin": "DB00035",
    "Emicizumab": "DB13923", "Tranexamic acid": "DB00302", "Human immunoglobulin G": "DB00028",
    "Methoxsalen": "DB00553", "Ruxolitinib": "DB08877", "Calcipotriol": "DB02300",
    "Clobetasol propionate": "DB01013", "Acitretin": "DB00459", "Apremilast": "DB05876",
    "Etanercept": "DB00005", "Calcitriol": "DB00136", "Sevelamer": "DB00658", "Cinacalcet": "DB01012",
    "Alpha-1-proteinase inhibitor": "DB00058", "Amoxicillin": "DB01060",
    "Benzylpenicillin": "DB01053", "Ascorbic acid": "DB00126", "Cholecalciferol": "DB00169",
    "Trimethoprim": "DB00440", "Lithium": "DB01356", "Metyrosine": "DB00765",
    "Phentolamine": "DB00692", "Omeprazole": "DB00338", "Fluconazole": "DB00196",
    "Acetaminophen": "DB00316", "Metformin": "DB00331",
    "Antihemophilic factor, human recombinant": "DB00025", "Hepatitis A vaccine": None,
}

DISEASES = {  # MONDO ids without prefix / leading zeros
    "vitiligo": None, "oculocutaneous albinism type 1": None, "tinea versicolor": None,
    "solar lentigo": None, "melanoma": "5105", "Zenker diverticulum": None,
    "gastroesophageal reflux disease": "7186", "esophageal candidiasis": None,
    "Meckel diverticulum": None, "asthma": "4979", "chronic obstructive pulmonary disease": "5002",
    "hypertensive disorder": "5044", "heart failure": "5252", "hereditary angioedema": None,
    "schizophrenia": "5090", "hyperprolactinemia": None, "pheochromocytoma": None,
    "multiple endocrine neoplasia type 2A": None, "idiopathic inflammatory myopathy": None,
    "polymyositis": None, "dermatomyositis": None, "polymyalgia rheumatica": None,
    "systemic lupus erythematosus": "7915", "systemic sclerosis": None,
    "inflammatory bowel disease": "5265", "ulcerative colitis": "5101", "Crohn disease": "5011",
    "alpha 1-antitrypsin deficiency": None, "psoriasis": "5083", "psoriatic arthritis": None,
    "hemophilia": None, "hemophilia A": "10602", "hemophilia B": None, "von Willebrand disease": None,
    "viral hepatitis": None, "hepatitis A": None, "hepatitis B": None, "acute liver failure": None,
    "glomerulonephritis": None, "IgA nephropathy": None, "chronic kidney disease": "5300",
    "secondary hyperparathyroidism of renal origin": None, "X-linked agammaglobulinemia": None,
    "DiGeorge syndrome": None, "ataxia telangiectasia": None, "Wiskott-Aldrich syndrome": None,
    "otitis media": None, "pneumococcal pneumonia": None, "seborrheic keratosis": None,
    "cardiac arrhythmia": None, "atrial fibrillation": "4981", "Brugada syndrome": None,
    "sick sinus syndrome": None, "hypertrophic cardiomyopathy": None, "scurvy": None,
    "rickets": None, "type 2 diabetes mellitus": "5148",
}

PHENOTYPES = {  # HPO ids without prefix / leading zeros
    "Hypopigmentation of the skin": "1010", "Hyperpigmentation of the skin": "953",
    "Nystagmus": "639", "Dysphagia": "2015", "Halitosis": None, "Regurgitation": None,
    "Cricopharyngeal achalasia": None, "Aspiration pneumonia": None, "Heartburn": None,
    "Odynophagia": None, "Hematochezia": "2573", "Wheezing": "30828", "Dyspnea": "2094",
    "Eosinophilia": "1880", "Cough": "12735", "Emphysema": "2097", "Cirrhosis": "1394",
    "Abnormal blood potassium concentration": None, "Hyperkalemia": "2153", "Hypokalemia": "2900",
    "Hypercalcemia": "3072", "Hypertension": "822", "Edema": "969", "Angioedema": "100665",
    "Gynecomastia": "771", "Hyperprolactinemia": "870", "Galactorrhea": "100829",
    "Agranulocytosis": "12234", "Increased body weight": "4324", "Prolonged QT interval": "1657",
    "Hypothyroidism": "821", "Xerostomia": "217", "Tachycardia": "1649",
    "Pheochromocytoma": "2666", "Medullary thyroid carcinoma": "2865",
    "Primary hyperparathyroidism": "8200", "Hypertensive crisis": "100735", "Headache": "2315",
    "Hyperhidrosis": "975", "Orthostatic hypotension": "1278", "Nasal congestion": "1742",
    "Miosis": "616", "Proximal muscle weakness": "3701", "Myositis": "100614",
    "Elevated circulating creatine kinase concentration": "3236", "Skin rash": "988",
    "Elevated erythrocyte sedimentation rate": "3565", "Arthralgia": "2829",
    "Raynaud phenomenon": "30880", "Bloody diarrhea": None, "Tenesmus": None,
    "Abdominal pain": "2027", "Diarrhea": "2014", "Colitis": "2583",
    "Continuous mucosal inflammation of the colon": None, "Transmural intestinal inflammation": None,
    "Noncaseating granulomas": None, "Erythema nodosum": "12219", "Nail pits": None,
    "Onycholysis": "1806", "Silvery plaques on extensor surfaces": None,
    "Psoriasiform dermatitis": "3765", "Arthritis": "1369", "X-linked recessive inheritance": "1419",
    "Hemarthrosis": "5261", "Prolonged partial thromboplastin time": "3645",
    "Bruising susceptibility": "978", "Abnormal bleeding": "1892", "Jaundice": "952", "Fever": "1945",
    "Anorexia": "2039", "Fatigue": "12378", "Nausea": "2018", "Elevated hepatic transaminase": "2910",
    "Hepatic failure": "1399", "Hematuria": "790", "Proteinuria": "93", "Chronic kidney disease": "12622",
    "Hypocalcemia": "2901", "Hyperphosphatemia": "2905",
    "Elevated circulating parathyroid hormone level": "3165",
    "Decreased circulating calcitriol concentration": None, "Bone pain": "2653",
    "Recurrent otitis media": "403",
    "Recurrent respiratory infections": None, "Recurrent pneumonia": "6532",
    "Agammaglobulinemia": "4432", "Recurrent bacterial infections": "2718",
    "Absent circulating B cells": None, "Recurrent viral infections": "4429", "Ataxia": "1251",
    "Telangiectasia": "1009", "Eczema": "964", "Thrombocytopenia": "1873", "Hyperkeratosis": "962",
    "Papule": None, "Acanthosis nigricans": "956", "Palpitations": "1962", "Dizziness": "2321",
    "Atrial fibrillation": "5110", "Paroxysmal atrial fibrillation": None, "Syncope": "1279",
    "Ventricular tachycardia": "4756", "Pulmonary fibrosis": "2206", "Gingival bleeding": "225",
    "Poor wound healing": "1058",
}

ANATOMY = {  # UBERON ids without prefix / leading zeros
    "skin epidermis": "1003", "lung": "2048", "bronchus": "2185",
    "liver": "2107", "kidney": "2113", "adrenal gland": "2369", "adrenal medulla": "1236",
    "heart": "948", "left cardiac atrium": "2079", "parathyroid gland": "1132",
    "thyroid gland": "2046", "pituitary gland": "7", "bone marrow": "2371", "blood": "178",
    "skeletal muscle tissue": "1134", "colon": "1155", "rectum": "1052",
}

BIOPROCESSES = {  # GO ids without prefix / leading zeros
    "melanin biosynthetic process": "42438", "blood coagulation": "7596",
    "inflammatory response": "6954", "B cell activation": "42113", "B cell differentiation": "30183",
    "proteolysis": "6508", "negative regulation of endopeptidase activity": "10951",
    "calcium ion homeostasis": "55074", "T cell mediated cytotoxicity": "1913",
}
MOLFUNCS = {
    "serine-type endopeptidase activity": "4252", "serine-type endopeptidase inhibitor activity": "4867",
    "G protein-coupled acetylcholine receptor activity": "16907",
}
CELLCOMPS = {"extracellular space": "5615"}
PATHWAYS = {  # Reactome stable ids
    "Neutrophil degranulation": "R-HSA-6798695", "Intrinsic Pathway of Fibrin Clot Formation": None,
    "Catecholamine biosynthesis": None, "Muscarinic acetylcholine receptors": None,
}
EXPOSURES = {  # CTD / MeSH descriptor ids
    "Smoking": "D012907", "Tobacco Smoke Pollution": "D014028", "Shellfish": None,
    "Alcohol Drinking": None, "Needlestick Injuries": None,
}

NODE_GROUPS = (  # (type, source, table)
    ("gene/protein", "NCBI", GENES),
    ("drug", "DrugBank", DRUGS),
    ("disease", "MONDO", DISEASES),
    ("effect/phenotype", "HPO", PHENOTYPES),
    ("anatomy", "UBERON", ANATOMY),
    ("biological_process", "GO", BIOPROCESSES),
    ("molecular_function", "GO", MOLFUNCS),
    ("cellular_component", "GO", CELLCOMPS),
    ("pathway", "REACTOME", PATHWAYS),
    ("exposure", "CTD", EXPOSURES),
)

# ---------------------------------------------------------------------------------------------
# Edges, one per line: "head | relation[:display_relation] | tail, tail, ...". The display
# relation defaults to PrimeKG's label for the relation. Heads and tails are node names.

DEFAULT_DISPLAY = {
    "indication": "indication", "contraindication": "contraindication", "off-label use": "off-label use",
    "drug_drug": "synergistic interaction", "drug_protein": "target", "drug_effect": "side effect",
    "disease_phenotype_positive": "phenotype present", "disease_phenotype_negative": "phenotype absent",
    "disease_protein": "associated with", "disease_disease": "parent-child",
    "phenotype_protein": "associated with", "phenotype_phenotype": "parent-child",
    "anatomy_protein_present": "expression present", "protein_protein": "ppi",
    "exposure_disease": "linked to", "bioprocess_protein": "interacts with",
    "molfunc_protein": "interacts with", "cellcomp_protein": "interacts with",
    "pathway_protein": "interacts with",
}

EDGES = """
# --- vitiligo and other pigmentation disorders (Q: hypopigmented skin, absent melanocytes)
vitiligo | disease_phenotype_positive | Hypopigmentation of the skin
vitiligo | disease_protein | TYR, NLRP1, PTPN22
Ruxolitinib | indication | vitiligo
Methoxsalen | indication | vitiligo, psoriasis
Tacrolimus | off-label use | vitiligo
Ruxolitinib | drug_protein | JAK1, JAK2
oculocutaneous albinism type 1 | disease_phenotype_positive | Hypopigmentation of the skin, Nystagmus
oculocutaneous albinism type 1 | disease_protein | TYR
tinea versicolor | disease_phenotype_positive | Hypopigmentation of the skin, Hyperpigmentation of the skin
Ketoconazole | indication | tinea versicolor
solar lentigo | disease_phenotype_positive | Hyperpigmentation of the skin
melanoma | disease_protein | BRAF, MITF
TYR | bioprocess_protein | melanin biosynthetic process
skin epidermis | anatomy_protein_present | TYR, MITF
# --- Zenker diverticulum (Q: dysphagia, halitosis, cricopharyngeal dysfunction)
Zenker diverticulum | disease_phenotype_positive | Dysphagia, Halitosis, Regurgitation, Cricopharyngeal achalasia, Aspiration pneumonia
gastroesophageal reflux disease | disease_phenotype_positive | Heartburn, Dysphagia, Cough
Omeprazole | indication | gastroesophageal reflux disease
esophageal candidiasis | disease_phenotype_positive | Odynophagia, Dysphagia
Fluconazole | indication | esophageal candidiasis
Meckel diverticulum | disease_phenotype_positive | Hematochezia
# --- asthma -> muscarinic antagonist (Q: wheezing, dyspnea, eosinophilia, atopy)
asthma | disease_phenotype_positive | Wheezing, Dyspnea, Eosinophilia, Cough
asthma | disease_protein | IL4, IL13, IL5, ADRB2
Tiotropium | indication | asthma, chronic obstructive pulmonary disease
Ipratropium | indication | chronic obstructive pulmonary disease
Ipratropium | off-label use | asthma
Tiotropium | drug_protein | CHRM3, CHRM1, CHRM2
Ipratropium | drug_protein | CHRM1, CHRM2, CHRM3
Atropine | drug_protein | CHRM1, CHRM2, CHRM3
Ipratropium | drug_effect | Xerostomia
Atropine | drug_effect | Tachycardia, Xerostomia
CHRM1 | molfunc_protein | G protein-coupled acetylcholine receptor activity
CHRM2 | molfunc_protein | G protein-coupled acetylcholine receptor activity
CHRM3 | molfunc_protein | G protein-coupled acetylcholine receptor activity
Muscarinic acetylcholine receptors | pathway_protein | CHRM1, CHRM2, CHRM3
bronchus | anatomy_protein_present | CHRM3
lung | anatomy_protein_present | CHRM3, ACE, SERPINA1
Salbutamol | indication | asthma
Salbutamol | drug_protein | ADRB2
Salmeterol | indication | asthma, chronic obstructive pulmonary disease
Salmeterol | drug_protein | ADRB2
Budesonide | indication | asthma
Budesonide | drug_protein | NR3C1
Montelukast | indication | asthma
Montelukast | drug_protein | CYSLTR1
Omalizumab | indication | asthma
Omalizumab | drug_protein | IGHE
Mepolizumab | indication | asthma
Mepolizumab | drug_protein | IL5
Propranolol | contraindication | asthma
Propranolol | drug_protein | ADRB1, ADRB2
Propranolol | indication | hypertensive disorder
# --- captopril + triamterene -> hyperkalemia
Captopril | drug_effect | Hyperkalemia, Cough, Angioedema
Triamterene | drug_effect | Hyperkalemia
Spironolactone | drug_effect | Hyperkalemia, Gynecomastia
Amiloride | drug_effect | Hyperkalemia
Lisinopril | drug_effect | Hyperkalemia, Cough, Angioedema
Losartan | drug_effect | Hyperkalemia
Trimethoprim | drug_effect | Hyperkalemia
Hydrochlorothiazide | drug_effect | Hypokalemia, Hypercalcemia
Furosemide | drug_effect | Hypokalemia
Hyperkalemia | phenotype_phenotype | Abnormal blood potassium concentration
Hypokalemia | phenotype_phenotype | Abnormal blood potassium concentration
Captopril | indication | hypertensive disorder, heart failure
Lisinopril | indication | hypertensive disorder, heart failure
Losartan | indication | hypertensive disorder
Triamterene | indication | hypertensive disorder
Hydrochlorothiazide | indication | hypertensive disorder
Spironolactone | indication | heart failure
Furosemide | indication | heart failure
Lisinopril | contraindication | hereditary angioedema
hereditary angioedema | disease_protein | SERPING1
hereditary angioedema | disease_phenotype_positive | Angioedema
Captopril | drug_protein | ACE
Lisinopril | drug_protein | ACE
Losartan | drug_protein | AGTR1
Triamterene | drug_protein | SCNN1A, SCNN1B, SCNN1G
Amiloride | drug_protein | SCNN1A, SCNN1B, SCNN1G
Spironolactone | drug_protein | NR3C2
Furosemide | drug_protein | SLC12A1
Hydrochlorothiazide | drug_protein | SLC12A3
kidney | anatomy_protein_present | SCNN1A, NR3C2, KCNJ1, SLC12A1, SLC12A3, CYP27B1
Captopril | drug_drug | Triamterene, Spironolactone, Amiloride
Lisinopril | drug_drug | Triamterene, Spironolactone
hypertensive disorder | disease_phenotype_positive | Hypertension
heart failure | disease_phenotype_positive | Edema, Dyspnea
# --- risperidone -> gynecomastia
Risperidone | indication | schizophrenia
Haloperidol | indication | schizophrenia
Olanzapine | indication | schizophrenia
Clozapine | indication | schizophrenia
Risperidone | drug_effect | Gynecomastia, Hyperprolactinemia, Galactorrhea, Increased body weight, Prolonged QT interval
Haloperidol | drug_effect | Hyperprolactinemia, Gynecomastia, Prolonged QT interval
Olanzapine | drug_effect | Increased body weight
Clozapine | drug_effect | Agranulocytosis
Lithium | drug_effect | Hypothyroidism
Cimetidine | drug_effect | Gynecomastia
Ketoconazole | drug_effect | Gynecomastia
Digoxin | drug_effect | Gynecomastia, Nausea
Risperidone | drug_protein | DRD2, HTR2A
Haloperidol | drug_protein | DRD2
Olanzapine | drug_protein | DRD2, HTR2A
Clozapine | drug_protein | DRD2, HTR2A
Bromocriptine | drug_protein | DRD2
Cabergoline | drug_protein | DRD2
Bromocriptine | indication | hyperprolactinemia
Cabergoline | indication | hyperprolactinemia
hyperprolactinemia | disease_phenotype_positive | Hyperprolactinemia, Galactorrhea, Gynecomastia
hyperprolactinemia | disease_protein | PRL
Hyperprolactinemia | phenotype_protein | PRL
pituitary gland | anatomy_protein_present | PRL, DRD2
# --- pheochromocytoma (MEN2A history) -> phenoxybenzamine
Phenoxybenzamine | indication | pheochromocytoma
Phenoxybenzamine | drug_protein | ADRA1A, ADRA2A
Phenoxybenzamine | drug_effect | Orthostatic hypotension, Nasal congestion, Miosis, Tachycardia
Phentolamine | indication | pheochromocytoma
Phentolamine | drug_protein | ADRA1A, ADRA2A
Metyrosine | indication | pheochromocytoma
Metyrosine | drug_protein | TH
pheochromocytoma | disease_phenotype_positive | Pheochromocytoma, Hypertensive crisis, Headache, Hyperhidrosis, Tachycardia, Palpitations
pheochromocytoma | disease_protein | RET, VHL
multiple endocrine neoplasia type 2A | disease_phenotype_positive | Pheochromocytoma, Medullary thyroid carcinoma, Primary hyperparathyroidism
multiple endocrine neoplasia type 2A | disease_protein | RET
Atenolol | indication | hypertensive disorder
Atenolol | drug_protein | ADRB1
Nifedipine | indication | hypertensive disorder
Nifedipine | drug_protein | CACNA1C
adrenal medulla | anatomy_protein_present | TH, PNMT
adrenal gland | anatomy_protein_present | TH, PNMT, RET
thyroid gland | anatomy_protein_present | RET
Catecholamine biosynthesis | pathway_protein | TH, PNMT
# --- polymyositis (proximal weakness, endomysial CD8+ T cells)
idiopathic inflammatory myopathy | disease_disease | polymyositis, dermatomyositis
polymyositis | disease_phenotype_positive | Proximal muscle weakness, Myositis, Elevated circulating creatine kinase concentration
polymyositis | disease_protein | CD8A, HLA-A, HLA-DRB1
dermatomyositis | disease_phenotype_positive | Proximal muscle weakness, Myositis, Skin rash, Elevated circulating creatine kinase concentration
polymyalgia rheumatica | disease_phenotype_positive | Elevated erythrocyte sedimentation rate, Arthralgia
systemic lupus erythematosus | disease_phenotype_positive | Skin rash, Arthralgia, Arthritis
systemic sclerosis | disease_phenotype_positive | Raynaud phenomenon, Dysphagia
Prednisone | indication | polymyositis, dermatomyositis, polymyalgia rheumatica, systemic lupus erythematosus, asthma
Prednisone | drug_protein | NR3C1
Methotrexate | off-label use | polymyositis
Azathioprine | off-label use | polymyositis
Hydroxychloroquine | indication | systemic lupus erythematosus
CD8A | bioprocess_protein | T cell mediated cytotoxicity
skeletal muscle tissue | anatomy_protein_present | HLA-A
# --- ulcerative colitis (continuous mucosal inflammation) vs Crohn disease
inflammatory bowel disease | disease_disease | ulcerative colitis, Crohn disease
ulcerative colitis | disease_phenotype_positive | Continuous mucosal inflammation of the colon, Bloody diarrhea, Tenesmus, Hematochezia, Abdominal pain, Colitis, Erythema nodosum
ulcerative colitis | disease_phenotype_negative | Noncaseating granulomas, Transmural intestinal inflammation
Crohn disease | disease_phenotype_positive | Transmural intestinal inflammation, Noncaseating granulomas, Abdominal pain, Diarrhea, Erythema nodosum
ulcerative colitis | disease_protein | IL23R, HLA-DRB1
Crohn disease | disease_protein | NOD2, IL23R
Mesalazine | indication | ulcerative colitis
Sulfasalazine | indication | ulcerative colitis
Infliximab | indication | ulcerative colitis, Crohn disease, psoriasis
Adalimumab | indication | ulcerative colitis, Crohn disease, psoriasis
Ustekinumab | indication | ulcerative colitis, Crohn disease, psoriasis
Infliximab | drug_protein | TNF
Adalimumab | drug_protein | TNF
Ustekinumab | drug_protein | IL12B
Smoking | exposure_disease | Crohn disease, ulcerative colitis, chronic obstructive pulmonary disease
colon | anatomy_protein_present | CDX2
rectum | anatomy_protein_present | CDX2
# --- alpha-1 antitrypsin deficiency -> neutrophil elastase
alpha 1-antitrypsin deficiency | disease_protein | SERPINA1
alpha 1-antitrypsin deficiency | disease_phenotype_positive | Emphysema, Dyspnea, Cirrhosis
chronic obstructive pulmonary disease | disease_protein | SERPINA1, MMP12
chronic obstructive pulmonary disease | disease_phenotype_positive | Emphysema, Dyspnea, Cough, Wheezing
Emphysema | phenotype_protein | SERPINA1
SERPINA1 | protein_protein | ELANE
ELANE | protein_protein | ELN
Alpha-1-proteinase inhibitor | indication | alpha 1-antitrypsin deficiency
Alpha-1-proteinase inhibitor | drug_protein | ELANE
ELANE | molfunc_protein | serine-type endopeptidase activity
MMP12 | bioprocess_protein | proteolysis
ELANE | bioprocess_protein | proteolysis
SERPINA1 | molfunc_protein | serine-type endopeptidase inhibitor activity
SERPINA1 | bioprocess_protein | negative regulation of endopeptidase activity
SERPINA1 | cellcomp_protein | extracellular space
ELANE | cellcomp_protein | extracellular space
Neutrophil degranulation | pathway_protein | ELANE
bone marrow | anatomy_protein_present | ELANE, BTK
liver | anatomy_protein_present | SERPINA1, F8
Tobacco Smoke Pollution | exposure_disease | chronic obstructive pulmonary disease
# --- psoriasis (nail pitting, silvery extensor plaques)
psoriasis | disease_phenotype_positive | Silvery plaques on extensor surfaces, Nail pits, Onycholysis, Psoriasiform dermatitis
psoriatic arthritis | disease_phenotype_positive | Arthritis, Nail pits, Psoriasiform dermatitis
psoriasis | disease_protein | IL23R, IL23A, IL12B, IL17A, HLA-C, TNF
Methotrexate | indication | psoriasis
Methotrexate | drug_protein | DHFR
Etanercept | indication | psoriasis
Etanercept | drug_protein | TNF
Apremilast | indication | psoriasis, psoriatic arthritis
Apremilast | drug_protein | PDE4B
Calcipotriol | indication | psoriasis
Calcipotriol | drug_protein | VDR
Clobetasol propionate | indication | psoriasis
Clobetasol propionate | drug_protein | NR3C1
Acitretin | indication | psoriasis
Cyclosporine | indication | psoriasis
Lithium | drug_effect | Psoriasiform dermatitis
IL23A | protein_protein | IL23R, IL12B
TNF | protein_protein | TNFRSF1A
TNF | bioprocess_protein | inflammatory response
IL23R | bioprocess_protein | inflammatory response
# --- hemophilia A (X-linked recessive)
hemophilia | disease_disease | hemophilia A, hemophilia B
hemophilia A | disease_phenotype_positive | X-linked recessive inheritance, Hemarthrosis, Prolonged partial thromboplastin time, Bruising susceptibility
hemophilia B | disease_phenotype_positive | X-linked recessive inheritance, Hemarthrosis, Prolonged partial thromboplastin time
hemophilia A | disease_protein | F8
hemophilia B | disease_protein | F9
von Willebrand disease | disease_protein | VWF
von Willebrand disease | disease_phenotype_positive | Bruising susceptibility, Abnormal bleeding
Hemarthrosis | phenotype_protein | F8, F9
F8 | protein_protein | VWF
F8 | bioprocess_protein | blood coagulation
F9 | bioprocess_protein | blood coagulation
VWF | bioprocess_protein | blood coagulation
F8 | cellcomp_protein | extracellular space
Intrinsic Pathway of Fibrin Clot Formation | pathway_protein | F8, F9, F10
Antihemophilic factor, human recombinant | indication | hemophilia A
Desmopressin | indication | hemophilia A, von Willebrand disease
Emicizumab | indication | hemophilia A
Emicizumab | drug_protein | F9, F10
Tranexamic acid | indication | hemophilia A, hemophilia B
Antihemophilic factor, human recombinant | drug_protein | F8
# --- hepatitis A (shellfish)
viral hepatitis | disease_disease | hepatitis A, hepatitis B
hepatitis A | disease_phenotype_positive | Jaundice, Fever, Anorexia, Fatigue, Nausea, Elevated hepatic transaminase
hepatitis B | disease_phenotype_positive | Jaundice, Fatigue, Elevated hepatic transaminase
hepatitis A | disease_protein | HAVCR1
Shellfish | exposure_disease | hepatitis A
Needlestick Injuries | exposure_disease | hepatitis B
Hepatitis A vaccine | indication | hepatitis A
Human immunoglobulin G | indication | hepatitis A, X-linked agammaglobulinemia
Acetaminophen | drug_effect | Hepatic failure
acute liver failure | disease_phenotype_positive | Hepatic failure, Jaundice
# --- IgA nephropathy -> CKD -> secondary hyperparathyroidism
glomerulonephritis | disease_disease | IgA nephropathy
IgA nephropathy | disease_phenotype_positive | Hematuria, Proteinuria, Chronic kidney disease
IgA nephropathy | disease_protein | IGHA1
Budesonide | indication | IgA nephropathy
Lisinopril | off-label use | IgA nephropathy
chronic kidney disease | disease_phenotype_positive | Chronic kidney disease, Hyperphosphatemia, Hypocalcemia
secondary hyperparathyroidism of renal origin | disease_phenotype_positive | Chronic kidney disease, Elevated circulating parathyroid hormone level, Hypocalcemia, Hyperphosphatemia, Decreased circulating calcitriol concentration, Bone pain
secondary hyperparathyroidism of renal origin | disease_protein | PTH, FGF23, CASR
Calcitriol | indication | secondary hyperparathyroidism of renal origin
Calcitriol | drug_protein | VDR
Cinacalcet | indication | secondary hyperparathyroidism of renal origin
Cinacalcet | drug_protein | CASR
Sevelamer | indication | chronic kidney disease
PTH | protein_protein | PTH1R
FGF23 | protein_protein | FGFR1, KL
PTH | bioprocess_protein | calcium ion homeostasis
CASR | bioprocess_protein | calcium ion homeostasis
VDR | bioprocess_protein | calcium ion homeostasis
parathyroid gland | anatomy_protein_present | PTH, CASR
Elevated circulating parathyroid hormone level | phenotype_protein | PTH
# --- Bruton (X-linked) agammaglobulinemia vs other immunodeficiencies
X-linked agammaglobulinemia | disease_protein | BTK
X-linked agammaglobulinemia | disease_phenotype_positive | Agammaglobulinemia, Recurrent otitis media, Recurrent pneumonia, Recurrent bacterial infections, Absent circulating B cells, X-linked recessive inheritance
Agammaglobulinemia | phenotype_protein | BTK
BTK | protein_protein | BLNK
CD19 | protein_protein | CD81
BTK | bioprocess_protein | B cell differentiation, B cell activation
CD19 | bioprocess_protein | B cell activation
blood | anatomy_protein_present | CD19, CD8A
otitis media | disease_phenotype_positive | Fever
Amoxicillin | indication | otitis media
Benzylpenicillin | indication | pneumococcal pneumonia
pneumococcal pneumonia | disease_phenotype_positive | Fever, Cough, Dyspnea
DiGeorge syndrome | disease_phenotype_positive | Hypocalcemia, Recurrent viral infections
DiGeorge syndrome | disease_protein | TBX1
ataxia telangiectasia | disease_phenotype_positive | Ataxia, Telangiectasia, Recurrent respiratory infections, Recurrent pneumonia
ataxia telangiectasia | disease_protein | ATM
Wiskott-Aldrich syndrome | disease_phenotype_positive | Eczema, Thrombocytopenia, Recurrent bacterial infections, X-linked recessive inheritance
Wiskott-Aldrich syndrome | disease_protein | WAS
# --- seborrheic keratosis
seborrheic keratosis | disease_phenotype_positive | Hyperkeratosis, Hyperpigmentation of the skin, Papule
seborrheic keratosis | disease_protein | FGFR3, PIK3CA
melanoma | disease_phenotype_positive | Hyperpigmentation of the skin
type 2 diabetes mellitus | disease_phenotype_positive | Acanthosis nigricans
Metformin | indication | type 2 diabetes mellitus
Metformin | drug_protein | PRKAB1
Metformin | drug_effect | Nausea, Diarrhea
# --- atrial fibrillation after binge drinking (holiday heart)
cardiac arrhythmia | disease_disease | atrial fibrillation, Brugada syndrome, sick sinus syndrome
atrial fibrillation | disease_phenotype_positive | Atrial fibrillation, Paroxysmal atrial fibrillation, Palpitations, Dizziness, Dyspnea
Paroxysmal atrial fibrillation | phenotype_phenotype | Atrial fibrillation
Alcohol Drinking | exposure_disease | atrial fibrillation
atrial fibrillation | disease_protein | PITX2, KCNQ1, SCN5A, GJA5, NPPA, KCNA5
Brugada syndrome | disease_protein | SCN5A
Brugada syndrome | disease_phenotype_positive | Syncope, Ventricular tachycardia
sick sinus syndrome | disease_protein | SCN5A, HCN4
sick sinus syndrome | disease_phenotype_positive | Syncope, Dizziness
hypertrophic cardiomyopathy | disease_protein | MYH7, MYBPC3
hypertrophic cardiomyopathy | disease_phenotype_positive | Syncope, Dyspnea, Palpitations
Warfarin | indication | atrial fibrillation
Warfarin | drug_protein | VKORC1
Warfarin | drug_effect | Abnormal bleeding
Apixaban | indication | atrial fibrillation
Apixaban | drug_protein | F10
Digoxin | indication | atrial fibrillation, heart failure
Digoxin | drug_protein | ATP1A1
Diltiazem | indication | atrial fibrillation
Diltiazem | drug_protein | CACNA1C
Verapamil | indication | atrial fibrillation
Verapamil | drug_protein | CACNA1C
Verapamil | contraindication | sick sinus syndrome
Amiodarone | off-label use | atrial fibrillation
Amiodarone | contraindication | sick sinus syndrome
Amiodarone | drug_protein | KCNH2
Amiodarone | drug_effect | Hypothyroidism, Pulmonary fibrosis
Metoprolol | off-label use | atrial fibrillation
Metoprolol | indication | hypertensive disorder
Metoprolol | drug_protein | ADRB1
Warfarin | drug_drug | Amiodarone
Digoxin | drug_drug | Amiodarone, Verapamil
heart | anatomy_protein_present | KCNH2, SCN5A, MYH7, ATP1A1
left cardiac atrium | anatomy_protein_present | NPPA, PITX2
# --- scurvy (vitamin C) and rickets (vitamin D)
scurvy | disease_phenotype_positive | Gingival bleeding, Poor wound healing, Bruising susceptibility
Ascorbic acid | indication | scurvy
rickets | disease_phenotype_positive | Hypocalcemia, Bone pain
Cholecalciferol | indication | rickets
"""

# Question entity -> answer entity pairs of the demo questions (qa_sample.jsonl); the tests
# check that each pair is joined by a path of at most 3 hops in the ingested KG.
DEMO_QUESTION_LINKS = (
    ("Hypopigmentation of the skin", "vitiligo"),
    ("skin epidermis", "vitiligo"),
    ("Dysphagia", "Zenker diverticulum"),
    ("Halitosis", "Zenker diverticulum"),
    ("Cricopharyngeal achalasia", "Zenker diverticulum"),
    ("Wheezing", "Tiotropium"),
    ("Eosinophilia", "Ipratropium"),
    ("asthma", "CHRM3"),
    ("Captopril", "Hyperkalemia"),
    ("Triamterene", "Hyperkalemia"),
    ("Risperidone", "Gynecomastia"),
    ("schizophrenia", "Gynecomastia"),
    ("multiple endocrine neoplasia type 2A", "Phenoxybenzamine"),
    ("Hypertensive crisis", "Phenoxybenzamine"),
    ("pheochromocytoma", "Phenoxybenzamine"),
    ("Proximal muscle weakness", "polymyositis"),
    ("CD8A", "polymyositis"),
    ("ulcerative colitis", "Continuous mucosal inflammation of the colon"),
    ("Bloody diarrhea", "Continuous mucosal inflammation of the colon"),
    ("alpha 1-antitrypsin deficiency", "ELANE"),
    ("Smoking", "ELANE"),
    ("Nail pits", "Silvery plaques on extensor surfaces"),
    ("hemophilia A", "X-linked recessive inheritance"),
    ("hepatitis A", "Shellfish"),
    ("IgA nephropathy", "Elevated circulating parathyroid hormone level"),
    ("IgA nephropathy", "Hypocalcemia"),
    ("IgA nephropathy", "Hyperphosphatemia"),
    ("IgA nephropathy", "Decreased circulating calcitriol concentration"),
    ("X-linked agammaglobulinemia", "Recurrent otitis media"),
    ("X-linked agammaglobulinemia", "Recurrent pneumonia"),
    ("Hyperpigmentation of the skin", "seborrheic keratosis"),
    ("Alcohol Drinking", "Paroxysmal atrial fibrillation"),
    ("Palpitations", "atrial fibrillation"),
    ("scurvy", "Ascorbic acid"),
)


def build_nodes() -> tuple[list[dict], dict[str, dict], list[dict]]:
    """Nodes in declaration order, a name -> node map, and the placeholder list."""
    nodes: list[dict] = []
    by_name: dict[str, dict] = {}
    placeholders: list[dict] = []
    for node_type, source, table in NODE_GROUPS:
        for name, source_id in table.items():
            if name in by_name:
                raise ValueError(f"node name {name!r} declared twice ({by_name[name]['type']} and {node_type})")
            if source_id is None:
                source_id = f"DEMO-{source}-{sum(1 for p in placeholders if p['source'] == source) + 1:03d}"
                placeholders.append({"type": node_type, "name": name, "source": source, "id": source_id})
            node = {"index": len(nodes), "type": node_type, "name": name, "source": source, "id": source_id}
            nodes.append(node)
            by_name[name] = node
    return nodes, by_name, placeholders


def parse_edges(text: str = EDGES) -> list[tuple[str, str, str, str]]:
    """``(head, relation, display_relation, tail)`` from the EDGES block."""
    triples = []
    for line_no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3:
            raise ValueError(f"EDGES line {line_no}: expected 'head | relation | tails': {raw!r}")
        head, rel, tails = parts
        relation, _, display = rel.partition(":")
        display = display or DEFAULT_DISPLAY[relation]
        for tail in (t.strip() for t in tails.split(",")):
            triples.append((head, relation, display, tail))
    return triples


def build_rows() -> tuple[list[list[str]], list[dict], list[tuple[str, str, str, str]]]:
    nodes, by_name, placeholders = build_nodes()
    triples = parse_edges()  # a head may contain commas; tails cannot (they are comma-separated)
    seen: set[tuple] = set()
    rows: list[list[str]] = []
    for head, relation, display, tail in triples:
        for name in (head, tail):
            if name not in by_name:
                raise ValueError(f"edge {head!r} -[{relation}]- {tail!r}: unknown node {name!r}")
        key = (min(by_name[head]["index"], by_name[tail]["index"]),
               max(by_name[head]["index"], by_name[tail]["index"]), relation)
        if key in seen:
            raise ValueError(f"duplicate edge {head!r} -[{relation}]- {tail!r}")
        seen.add(key)
        x, y = by_name[head], by_name[tail]
        for a, b in ((x, y), (y, x)):  # PrimeKG stores both directions
            rows.append([relation, display, str(a["index"]), a["id"], a["type"], a["name"], a["source"],
                         str(b["index"]), b["id"], b["type"], b["name"], b["source"]])
    used = {t[0] for t in triples} | {t[3] for t in triples}
    unused = [n["name"] for n in nodes if n["name"] not in used]
    if unused:
        raise ValueError(f"declared nodes without edges: {unused}")
    return rows, placeholders, triples


def render_csv(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(KG_COLUMNS)
    writer.writerows(rows)
    return buf.getvalue()


def render_placeholders(placeholders: list[dict]) -> str:
    lines = [
        "# Placeholder identifiers in the demo KG",
        "",
        "Generated by `build_demo_kg.py`. These nodes are real medical concepts, but the curator",
        "was not certain of their identifier in the source vocabulary, so they carry a",
        "`DEMO-<SOURCE>-<n>` placeholder instead of a guessed id. Replace them with the real ids",
        "(and drop them from this list) when mapping the demo KG onto a PrimeKG release.",
        "",
        "| type | name | source | placeholder id |",
        "|---|---|---|---|",
    ]
    lines += [f"| {p['type']} | {p['name']} | {p['source']} | {p['id']} |" for p in placeholders]
    return "\n".join(lines) + "\n"


def main(out_dir: Path = HERE) -> int:
    rows, placeholders, triples = build_rows()
    (out_dir / "kg.csv").write_text(render_csv(rows), encoding="utf-8")
    (out_dir / "PLACEHOLDER_IDS.md").write_text(render_placeholders(placeholders), encoding="utf-8")
    print(f"wrote {len(rows)} rows ({len(triples)} undirected edges) and {len(placeholders)} placeholders"
          f" to {out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
