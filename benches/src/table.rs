//! Result tables of the harnesses in `src/bin/`, as markdown (for `docs/benchmarks.md`) or
//! as aligned plain text.

/// A table as rows of cells, rendered as markdown or as aligned plain text.
pub fn render(rows: &[Vec<String>], markdown: bool) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |row: &Vec<String>| {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect();
        if markdown {
            format!("| {} |\n", cells.join(" | "))
        } else {
            format!("{}\n", cells.join("  ").trim_end())
        }
    };
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        out.push_str(&line(row));
        if i == 0 && markdown {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat((*w).max(3))).collect();
            out.push_str(&format!("|-{}-|\n", rule.join("-|-")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_tables_have_a_header_rule() {
        let rows = vec![
            vec!["a".to_owned(), "bb".to_owned()],
            vec!["ccc".to_owned(), "d".to_owned()],
        ];
        assert_eq!(
            render(&rows, true),
            "| a   | bb |\n|-----|-----|\n| ccc | d  |\n"
        );
        assert_eq!(render(&rows, false), "a    bb\nccc  d\n");
    }
}
