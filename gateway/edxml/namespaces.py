"""The namespaces of edXML (QCVN 102:2016) and of XML-DSig."""

QCVN_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
