# Compiles every .java file under SOURCE_DIRS ('|'-separated) into CLASSES and packs them into
# the jar OUT. Run as a build step (cmake -P), so that SWIG's generated sources, whose names
# are only known once SWIG ran, are found at build time.
#   -DJAVAC= -DJAVA_MAJOR= -DJAR= -DOUT= -DCLASSES= -DSOURCE_DIRS=a|b [-DCLASSPATH=x.jar:y.jar]
#   [-DMAIN_CLASS=]
string(REPLACE "|" ";" dirs "${SOURCE_DIRS}")
set(sources "")
foreach(dir IN LISTS dirs)
  file(GLOB_RECURSE found "${dir}/*.java")
  list(APPEND sources ${found})
endforeach()
if(NOT sources)
  message(FATAL_ERROR "build_jar: no .java files under ${SOURCE_DIRS}")
endif()
list(SORT sources)
file(REMOVE_RECURSE "${CLASSES}")
file(MAKE_DIRECTORY "${CLASSES}")
string(REPLACE ";" "\n" argfile "${sources}")
file(WRITE "${CLASSES}.sources" "${argfile}\n")
set(cp "")
if(CLASSPATH)
  set(cp -classpath "${CLASSPATH}")
endif()
# -Xlint:all -Werror: generated code included, every warning fails the build. Except, from
# JDK 21 on, this-escape: SWIG's director constructors hand `this` to native code by design.
set(lint -Xlint:all)
if(JAVA_MAJOR GREATER_EQUAL 21)
  list(APPEND lint -Xlint:-this-escape)
endif()
execute_process(
  COMMAND "${JAVAC}" --release 17 -encoding UTF-8 ${lint} -Werror ${cp} -d "${CLASSES}"
          "@${CLASSES}.sources"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "build_jar: javac failed for ${OUT}")
endif()
set(entry "")
if(MAIN_CLASS)
  set(entry --main-class "${MAIN_CLASS}")
endif()
execute_process(COMMAND "${JAR}" --create --file "${OUT}" ${entry} -C "${CLASSES}" .
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "build_jar: jar failed for ${OUT}")
endif()
