//! Statistics over seeds, paper tables and figures.
