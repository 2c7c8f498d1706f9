"""Process-level helpers shared by embedding jobs, indexes and training: where this process sits in a
multi-process launch (`distributed`) and crash-safe file writes (`atomic`). They import only `umr.errors`, so every
package may use them."""
