/* export.h: a run record's series as plain text for gnuplot and spreadsheets. */
#ifndef RESPROP_EXPORT_H
#define RESPROP_EXPORT_H

/* For every series group anywhere in the record ("/epoch", "/step", "/layers/003_conv1/...")
 * writes OUT/<path>.dat and OUT/<path>.csv, where <path> is the group path without its leading
 * '/' and with every other '/' turned into '_' ("/layers/003_conv1/grad" -> layers_003_conv1_grad).
 *   .dat: "# col1 col2 ..." then "# [unit1] [unit2] ..." then whitespace-separated rows
 *   .csv: a header row "col1,col2,..." then comma-separated rows
 * Numbers are written in the shortest form that reads back to the same double. Columns of unequal
 * length (a crash mid-append) are cut to the shortest. out_dir is created (with parents) if
 * missing; each file is written under NAME.tmp and renamed, so readers never see half a file.
 * Errors (ERR_IO, ERR_FORMAT, ERR_HDF5, ERR_NOMEM) are logged naming the file; a record without
 * any series is not an error (a warning). */
int export_run(const char *record_path, const char *out_dir);

#endif
